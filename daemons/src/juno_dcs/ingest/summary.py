"""The raw blocks' summary: each daily block's view (ingest.status.BlockView) kept in the grid's database, so that
`juno-dcs raw status` over every day and the dashboard's blocks panel do not ask Rucio about every block.

Asked live, a block costs Rucio a count of its file replicas per RSE (a join over its files: Rucio keeps no
per-dataset count that is current) besides its metadata and rules; at JUNO's 4 million files there are about
2,800 blocks, and a view of all of them took minutes (docs/performance.md). Almost all of them are settled: closed,
every rule OK for every file. A settled block changes only when one of its rules changes (a lost replica makes its
rule REPLICATING or STUCK; a removed rule goes), so:

- `refresh` (the dashboard's collector, every `blocks_refresh_s`): lists the blocks and every rule of the scope
  (one call each), and computes anew, at most `budget` at a time, the blocks that are new, not settled, whose rules'
  key changed, or that were last checked more than `recheck_s` ago; drops the rows of blocks that are gone.
- `read_status` (`raw status` without --day/--stream, and the panel): the summary's settled blocks as they are,
  and live views of every block the summary lacks or holds unsettled, so what is still moving is always current.

Rows are written with INSERT ... ON CONFLICT DO UPDATE: two collectors refreshing the same block leave one row,
the later view. SQL only here; the views come from ingest.status.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from juno_dcs.ingest.status import (
    BULK_FROM,
    BlockView,
    Client,
    StatusRow,
    raw_status,
    rules_by_block,
    views_of,
)
from juno_dcs.topology import Topology

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[TupleRow]
BLOCK_PATTERN = "block.*"
SHOWN = 100  # the refreshed blocks named in a pass's report


@dataclass(frozen=True)
class Stored:
    view: BlockView
    settled: bool
    rules_key: str
    checked_at: datetime


@dataclass
class Refresh:
    blocks: int = 0
    refreshed: list[str] = field(default_factory=list)
    removed: int = 0
    left: int = 0  # due but beyond this pass's budget

    def as_json(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "refreshed": len(self.refreshed), "removed": self.removed, "left": self.left,
                "refreshed_blocks": self.refreshed[:SHOWN]}


def rules_key(rules: Iterable[dict[str, Any]]) -> str:
    """What must stay the same for a settled block to stay settled: its rules, their states and lock counts."""
    parts = sorted(f"{r['id']}:{r['state']}:{r.get('locks_ok_cnt')}:{r.get('locks_replicating_cnt')}:"
                   f"{r.get('locks_stuck_cnt')}" for r in rules)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def settled(view: BlockView) -> bool:
    """Nothing in Rucio moves for it: closed, and every rule it has OK for every file of the block. (A closed block
    without rules is settled too: nothing is copied for it until a rule comes, and a new rule changes its key.)"""
    details = [rule for site in view.sites.values() for rule in site.rule_details]
    return view.state == "closed" and all(r.state == "OK" and r.reason is None for r in details)


def read(conn: Conn, scope: str) -> dict[str, Stored]:
    rows = conn.execute("SELECT name, view, settled, rules_key, checked_at FROM dashboard.block_summary"
                        " WHERE scope = %s", (scope,)).fetchall()
    return {name: Stored(BlockView.model_validate(view), bool(ok), key, at) for name, view, ok, key, at in rows}


def write(conn: Conn, scope: str, views: Iterable[tuple[BlockView, str]]) -> int:
    rows = [(scope, v.name, json.dumps(v.model_dump(mode="json")), settled(v), key) for v, key in views]
    if rows:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO dashboard.block_summary (scope, name, view, settled, rules_key)"
                " VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (scope, name) DO UPDATE SET view = EXCLUDED.view, settled = EXCLUDED.settled,"
                " rules_key = EXCLUDED.rules_key, checked_at = now()", rows)
    return len(rows)


def block_names(client: Client, scope: str) -> list[str]:
    return sorted(str(n) for n in client.list_dids(scope, {"name": BLOCK_PATTERN}, did_type="dataset"))


def refresh(client: Client, conn: Conn, topology: Topology, scope: str = "raw", budget: int = 200,
            recheck_s: float = 3600.0, now: datetime | None = None) -> Refresh:
    """One pass of the collector over the summary (see the module's docstring)."""
    now = now or datetime.now(UTC)
    names = block_names(client, scope)
    rules = rules_by_block(client, scope, set(names))
    stored = read(conn, scope)
    keys = {n: rules_key(rules.get(n, [])) for n in names}
    urgent = [n for n in names if n not in stored or not stored[n].settled or stored[n].rules_key != keys[n]]
    taken, before = set(urgent), now - timedelta(seconds=recheck_s)
    stale = sorted((n for n in names if n not in taken and stored[n].checked_at < before),
                   key=lambda n: stored[n].checked_at)
    due = urgent + stale
    result = Refresh(blocks=len(names), left=max(0, len(due) - budget))
    todo = due[:budget]
    write(conn, scope, ((v, keys[v.name]) for v in views_of(client, topology, scope, todo, rules)))
    result.refreshed = todo
    gone = sorted(set(stored) - set(names))
    if gone:
        conn.execute("DELETE FROM dashboard.block_summary WHERE scope = %s AND name = ANY(%s)", (scope, gone))
        result.removed = len(gone)
    return result


def read_status(client: Client, conn: Conn | None, topology: Topology, scope: str = "raw") -> list[StatusRow]:
    """Every block: settled ones from the summary, the rest asked of Rucio now (all of them without a summary)."""
    if conn is None:
        return [StatusRow(v, None) for v in raw_status(client, topology, scope=scope)]
    names = block_names(client, scope)
    stored = read(conn, scope)
    live = [n for n in names if n not in stored or not stored[n].settled]
    rules = _rules_for(client, scope, live)
    fresh = {v.name: v for v in views_of(client, topology, scope, live, rules)}
    return [StatusRow(fresh[n], None) if n in fresh else StatusRow(stored[n].view, stored[n].checked_at)
            for n in names]


def _rules_for(client: Client, scope: str, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The rules of a few blocks one block at a time; of many, every rule of the scope in one call."""
    if len(names) >= BULK_FROM:
        return rules_by_block(client, scope, set(names))
    return {n: list(client.list_did_rules(scope, n)) for n in names}


def summary_connection(url: str) -> Conn | None:
    """An autocommit connection to the summary, or None when the database or the table is not there (then every
    block is asked of Rucio); the caller closes it."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        logger.warning("the blocks' summary is not reachable (%s): every block is asked of Rucio", exc)
        return None
    try:
        conn.execute("SELECT 1 FROM dashboard.block_summary LIMIT 1")
    except psycopg.Error:
        conn.close()
        return None
    return conn
