"""Keep the planner's statistics of the grid's database current when the server's autovacuum does not.

Rucio's bulk calls look files up with one long `OR` of (scope, name) pairs. With statistics from when a table was
small, PostgreSQL believes `scope = 'raw'` matches a few rows, reads every row of the scope and tests each against
the whole list: on 140,000 DIDs a 500-file registration spent 1.7 s in that one query, and 57 ms after ANALYZE. A
server whose autovacuum is off (as on this workplace's CI machines) never refreshes them, so the grid runs this
keeper: every few seconds it reads pg_stat_user_tables and runs ANALYZE (and VACUUM where dead rows pile up) on the
tables past autovacuum-like thresholds. With the server's autovacuum on it does nothing unless told to.

On the grid's database the keeper also gives Rucio's conveyor back the requests it claimed and could not move on
(juno_dcs.grid.claims: a claim older than `release_after` seconds on a request still waiting for its claimer),
which Rucio would otherwise pass over for a fixed 600 s. Instance 0 of the keepers does it; it is idempotent.

Two keepers at once share the tables by heartbeats (juno_dcs.heartbeat, beaten through the keeper's own
connection): each looks only at the tables whose oid hashes to its index. Each table is still worked on under a
try-lock, so while two keepers disagree on their count (for one beat) the second one skips it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from juno_dcs.daemon import run_daemon
from juno_dcs.heartbeat import ALL, Heartbeats, Share, timeout_for

logger = logging.getLogger(__name__)

# pg_try_advisory_lock(key1, key2): key1 marks this keeper's locks, key2 is the table's oid
LOCK_CLASS = 0x4A554E4F  # "JUNO"


class Mode(StrEnum):
    AUTO = "auto"  # only while the server's autovacuum is off
    ALWAYS = "always"


class Thresholds(BaseModel):
    """Like autovacuum's: a table is analyzed once `analyze_base + analyze_scale * rows` rows changed since its
    last ANALYZE, vacuumed once `vacuum_base + vacuum_scale * rows` dead rows wait."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    analyze_base: int = Field(default=500, ge=0)
    analyze_scale: float = Field(default=0.05, ge=0, le=10)
    vacuum_base: int = Field(default=2000, ge=0)
    vacuum_scale: float = Field(default=0.1, ge=0, le=10)


@dataclass(frozen=True)
class TableStats:
    oid: int
    schema: str
    table: str
    live: int
    dead: int
    modified: int  # rows changed since the last ANALYZE
    analyzed: bool  # ever analyzed (by anyone)


class Action(StrEnum):
    ANALYZE = "analyze"
    VACUUM = "vacuum"  # VACUUM (ANALYZE): one pass does both


@dataclass(frozen=True)
class Done:
    schema: str
    table: str
    action: Action
    seconds: float
    reason: str


def due(stats: TableStats, limits: Thresholds) -> tuple[Action, str] | None:
    """What `stats` calls for, with the reason; None when the table is fine."""
    vacuum_at = limits.vacuum_base + limits.vacuum_scale * stats.live
    if stats.dead > vacuum_at:
        return Action.VACUUM, f"{stats.dead} dead rows > {vacuum_at:.0f}"
    analyze_at = limits.analyze_base + limits.analyze_scale * stats.live
    if stats.modified > analyze_at:
        return Action.ANALYZE, f"{stats.modified} rows changed since the last ANALYZE > {analyze_at:.0f}"
    if not stats.analyzed and stats.modified > 0:
        return Action.ANALYZE, "never analyzed"
    return None


_STATS_SQL = """
SELECT s.relid, s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
       (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL)
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE pg_has_role(current_user, c.relowner, 'USAGE') AND s.schemaname NOT LIKE 'pg\\_temp%%'
  AND (%(oid)s::oid IS NULL OR s.relid = %(oid)s::oid)
ORDER BY s.relid
"""


def table_stats(conn: Any, oid: int | None = None) -> list[TableStats]:
    """The tables of the connected database that its user may analyze (or the one with `oid`)."""
    return [TableStats(int(r[0]), str(r[1]), str(r[2]), int(r[3] or 0), int(r[4] or 0), int(r[5] or 0), bool(r[6]))
            for r in conn.execute(_STATS_SQL, {"oid": oid}).fetchall()]


def autovacuum_on(conn: Any) -> bool:
    return str(conn.execute("SELECT current_setting('autovacuum')").fetchone()[0]) == "on"


def run_pass(conn: Any, limits: Thresholds, share: Share = ALL) -> list[Done]:
    """One look at every table of this keeper's share, and the ANALYZE or VACUUM each one needs. `conn` is an
    autocommit psycopg connection (VACUUM cannot run inside a transaction)."""
    from psycopg import errors, sql

    done: list[Done] = []
    for stats in table_stats(conn):
        if not share.takes(stats.oid) or due(stats, limits) is None:
            continue
        key = (LOCK_CLASS, stats.oid & 0x7FFFFFFF)  # advisory lock keys are signed 32-bit integers
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:
            continue  # another keeper is on it
        started = time.monotonic()
        try:
            now = table_stats(conn, stats.oid)  # look again under the lock
            need = due(now[0], limits) if now else None
            if need is None:
                continue  # another keeper did it between our look and our lock
            action, reason = need
            name = sql.Identifier(stats.schema, stats.table)
            statement = sql.SQL("VACUUM (ANALYZE) {}" if action is Action.VACUUM else "ANALYZE {}").format(name)
            conn.execute(statement)
        except (errors.LockNotAvailable, errors.UndefinedTable, errors.InsufficientPrivilege) as exc:
            logger.info("%s.%s skipped: %s", stats.schema, stats.table, str(exc).strip())
            continue
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        done.append(Done(stats.schema, stats.table, action, time.monotonic() - started, reason))
        logger.info("%s %s.%s in %.2f s (%s)", action.value, stats.schema, stats.table, done[-1].seconds, reason)
    return done


def connect(url: str) -> Any:
    import psycopg

    conn = psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="juno-dcs db-stats")
    # never queue behind a schema change for long; a table skipped now is taken on the next pass
    conn.execute("SET lock_timeout = '5s'")
    return conn


class Keeper:
    """The keeper's state between passes: its connection (made again after a failure) and what it did."""

    EXECUTABLE = "juno-dcs db-stats"

    def __init__(self, url: str, limits: Thresholds, mode: Mode, release_after: float = 0.0) -> None:
        self.url, self.limits, self.mode, self.release_after = url, limits, mode, release_after
        self.conn: Any = None
        self.done: list[Done] = []
        self.released: dict[str, int] = {}
        self._idle_logged = False
        self._has_requests: bool | None = None  # whether the database holds Rucio's requests table

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """The keeper's connection (for its passes and its heartbeats: it holds one)."""
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.close()
            self.conn = connect(self.url)
        yield self.conn

    def heartbeats(self, interval: float) -> Heartbeats:
        return Heartbeats(self.EXECUTABLE, self.connection, timeout_for(interval))

    def run_once(self, share: Share = ALL) -> bool:
        """One pass (the runner sleeps `interval` after it); a failure drops the connection and is raised."""
        try:
            with self.connection() as conn:
                if self.mode is Mode.AUTO and autovacuum_on(conn):
                    if not self._idle_logged:
                        logger.info("the server's autovacuum is on: it keeps the statistics, this keeper waits")
                        self._idle_logged = True
                else:
                    self._idle_logged = False
                    self.done += run_pass(conn, self.limits, share)
                if self.release_after > 0 and share.index == 0:
                    self._release_claims(conn)
        except Exception:  # the database restarting, a dropped connection: a new one next pass
            self.close()
            raise
        return True

    def _release_claims(self, conn: Any) -> None:
        from juno_dcs.grid import claims

        if self._has_requests is None:
            row = conn.execute("SELECT to_regclass('rucio.requests') IS NOT NULL").fetchone()
            self._has_requests = bool(row and row[0])
        if not self._has_requests:
            return
        released = claims.release(conn, self.release_after)
        for state, count in released.items():
            logger.warning("gave Rucio's conveyor back %d %s request(s) claimed more than %.0f s ago",
                           count, state, self.release_after)
            self.released[state] = self.released.get(state, 0) + count

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def keep(url: str, limits: Thresholds, mode: Mode, interval: float, stop: threading.Event,
         once: bool = False, beats: bool = True, release_after: float = 0.0) -> list[Done]:
    """Run passes every `interval` seconds until `stop` (or one pass with `once`) on the daemon runner; a lost
    connection is made again at the next pass. `beats`: share the tables with the other keepers by heartbeats.
    `release_after` > 0: also give the conveyor back claims older than that (juno_dcs.grid.claims)."""
    keeper = Keeper(url, limits, mode, release_after)
    try:
        run_daemon(Keeper.EXECUTABLE, keeper.run_once, stop=stop, once=once, sleep_time=interval,
                   heartbeats=keeper.heartbeats(interval) if beats else None, max_backoff=max(interval, 60.0))
    finally:
        keeper.close()
    return keeper.done
