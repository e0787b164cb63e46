"""Fill a catalogue fast: Rucio writes one unit, COPY writes the others as Rucio wrote it.

Rucio's bulk route (benchmarks/scale_fill.py) registers about 600 files a second on this 2-core machine and slows as
the catalogue grows, so 4 million files take hours. Here Rucio's own code registers the template unit (unit 0, as
scale_fill does), and every other unit is written with PostgreSQL's COPY as copies of the template's rows in the
tables Rucio wrote for it (dids, contents, replicas, did_meta), each row with its own unit's scope, name, account,
size, checksum, metadata and the time of the copy; every other column is the template's, so a copied unit is what
Rucio would have written.

A copy is written as Rucio's daemons leave what Rucio registers, as in a catalogue that grew over years: the
flags they clear (DAEMON_FLAGS: the transmogrifier's new DID, the judge's attachment to evaluate) cleared, no
re-evaluation queued for the judge (the DIDs have no rules). A fill through Rucio leaves them set, and the
transmogrifier clears about 33 DIDs a second (grid/programs.py), so a fill of millions would leave days of
backlog behind every measurement. Rucio's RSE counters get what its bulk route queues (one updated_rse_counters row
per dataset), for abacus to add to the RSE's usage. Not copied: the hermes messages of creation and closing
(notifications, nothing reads them back). tests/integration/test_scale_load.py checks a copied unit against the
same unit registered by Rucio, row by row.

    RUCIO_CONFIG=<home>/etc/rucio.cfg python benchmarks/scale_fill.py --copy --from 0 --to 4000000
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from benchmarks.scale_shape import DatasetSpec, unit

TEMPLATE_UNIT = 0
TABLES = ("dids", "contents", "replicas", "did_meta")
# set when Rucio registers a DID or attaches it, cleared by its daemons (the transmogrifier: a new DID; the judge
# evaluator: an attachment to re-evaluate rules for), and their value once cleared: the copies are settled
DAEMON_FLAGS: dict[str, dict[str, object]] = {"dids": {"is_new": False}, "contents": {"rule_evaluation": None}}
IDENTITY = {"scope", "name", "child_scope", "child_name", "account", "bytes", "adler32", "meta"}

Key = tuple[str, str]


@dataclass(frozen=True)
class UnitNames:
    """What is unit-specific in a unit's rows: where each template DID goes, and each new DID's attributes."""

    to_new: dict[Key, Key]
    file_attrs: dict[Key, tuple[int, str]]   # new file -> bytes, adler32
    collection_bytes: dict[Key, int]         # new dataset -> the sum of its files' bytes
    meta: dict[Key, dict[str, Any]]          # new dataset -> its metadata


def database_url() -> str:
    """The catalogue database of the RUCIO_CONFIG in effect, as a libpq URL."""
    from rucio.common.config import config_get
    from sqlalchemy.engine import make_url

    url = make_url(config_get("database", "default"))
    return url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)


def names_of(template: list[DatasetSpec], target: list[DatasetSpec]) -> UnitNames:
    """Pair `template`'s DIDs with `target`'s, position by position (the shape makes every unit alike)."""
    if [len(d.files) for d in template] != [len(d.files) for d in target]:
        raise ValueError("the two units differ in shape")
    to_new: dict[Key, Key] = {}
    file_attrs: dict[Key, tuple[int, str]] = {}
    collection_bytes: dict[Key, int] = {}
    meta: dict[Key, dict[str, Any]] = {}
    for old, new in zip(template, target, strict=True):
        to_new[(old.scope, old.name)] = (new.scope, new.name)
        collection_bytes[(new.scope, new.name)] = sum(f.bytes for f in new.files)
        meta[(new.scope, new.name)] = dict(new.meta)
        if old.container is not None and new.container is not None:
            to_new[(old.scope, old.container)] = (new.scope, new.container)
        for f_old, f_new in zip(old.files, new.files, strict=True):
            to_new[(old.scope, f_old.name)] = (new.scope, f_new.name)
            file_attrs[(new.scope, f_new.name)] = (f_new.bytes, f_new.adler32)
    return UnitNames(to_new, file_attrs, collection_bytes, meta)


class Template:
    """The template unit's rows, read once from the catalogue."""

    def __init__(self, conn: Any, user_scopes: tuple[str, ...]) -> None:
        self.specs = unit(TEMPLATE_UNIT, user_scopes)
        keys = sorted(names_of(self.specs, self.specs).to_new)
        self.columns: dict[str, list[str]] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {}
        scopes, names = [k[0] for k in keys], [k[1] for k in keys]
        for table in TABLES:
            cur = conn.execute(
                f"SELECT t.* FROM rucio.{table} t JOIN unnest(%s::text[], %s::text[]) AS k(scope, name) "  # noqa: S608
                "ON t.scope = k.scope AND t.name = k.name", (scopes, names))
            self.columns[table] = [c.name for c in cur.description or ()]
            self.rows[table] = [dict(zip(self.columns[table], r, strict=True)) for r in cur.fetchall()]
        files = sum(len(d.files) for d in self.specs)
        if len(self.rows["replicas"]) != files or not self.rows["contents"]:
            raise RuntimeError(f"the template unit {TEMPLATE_UNIT} is not complete in the catalogue "
                               f"({len(self.rows['replicas'])} of {files} replicas): register it with Rucio first")


def _now_or_none(value: Any, now: dt.datetime) -> Any:
    return now if isinstance(value, dt.datetime) else value


def unit_rows(template: Template, names: UnitNames, account_of: Any,
              now: dt.datetime) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows for the unit `names` describes, column for column in the template's order."""
    def key(row: dict[str, Any], prefix: str = "") -> Key:
        return (row[f"{prefix}scope"], row[f"{prefix}name"])

    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        rows = []
        for row in template.rows[table]:
            new = {c: _now_or_none(v, now) for c, v in row.items()}
            scope, name = names.to_new[key(row)]
            new["scope"], new["name"] = scope, name
            if "child_name" in row:
                new["child_scope"], new["child_name"] = names.to_new[key(row, "child_")]
                child = (new["child_scope"], new["child_name"])
                if child in names.file_attrs:
                    new["bytes"], new["adler32"] = names.file_attrs[child]
            elif (scope, name) in names.file_attrs:
                new["bytes"], new["adler32"] = names.file_attrs[(scope, name)]
            elif row.get("bytes") is not None:
                new["bytes"] = names.collection_bytes[(scope, name)]
            if "account" in row:
                new["account"] = account_of(scope)
            new |= DAEMON_FLAGS.get(table, {})  # as Rucio's daemons leave them
            if table == "did_meta":
                if set(row["meta"]) != set(names.meta[(scope, name)]):
                    raise RuntimeError(f"{scope}:{name}: metadata keys differ from the template's")
                new["meta"] = json.dumps(names.meta[(scope, name)])
            _check_no_template_name(row, new, template)
            rows.append(tuple(new[c] for c in template.columns[table]))
        out[table] = rows
    return out


def _check_no_template_name(old: dict[str, Any], new: dict[str, Any], template: Template) -> None:
    """A column this loader copies as is must not carry the template's identity (a name, a date): a guard for a Rucio
    that writes a new column derived from the name."""
    for column, value in old.items():
        if column in IDENTITY or not isinstance(value, str) or value != new[column]:
            continue
        if any(value == d.name or value.startswith(d.name) for d in template.specs):
            raise RuntimeError(f"column {column} holds the template's name {value!r}: the loader must map it")


def counter_rows(names: UnitNames, target: list[DatasetSpec], rse_id: Any, now: dt.datetime) -> list[tuple[Any, ...]]:
    """Rucio's RSE counter queue as its bulk route leaves it: one updated_rse_counters row per dataset."""
    return [(uuid.uuid4(), rse_id, len(d.files), names.collection_bytes[(d.scope, d.name)], now, now) for d in target]


def copy_rows(cur: Any, table: str, columns: Iterable[str], rows: Iterable[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY rucio.{table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def present(conn: Any, target: list[DatasetSpec]) -> bool:
    container = next(d for d in target if d.container is not None)
    return conn.execute("SELECT 1 FROM rucio.dids WHERE scope = %s AND name = %s",
                        (container.scope, container.container)).fetchone() is not None


def load_units(units: Iterable[int], user_scopes: tuple[str, ...], rse: str,
               account_of: Any) -> Iterator[tuple[int, bool]]:
    """Write each unit of `units` (not the template's) by COPY, one transaction a unit; yields (unit, added)."""
    import psycopg
    from rucio.core.rse import get_rse_id

    units = list(units)
    if not units:
        return
    rse_id = uuid.UUID(get_rse_id(rse))
    with psycopg.connect(database_url()) as conn:
        template = Template(conn, user_scopes)
        conn.commit()
        for u in units:
            if u == TEMPLATE_UNIT:
                raise ValueError("the template unit is registered by Rucio, not copied")
            target = unit(u, user_scopes)
            with conn.transaction():
                if present(conn, target):
                    yield u, False
                    continue
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                names = names_of(template.specs, target)
                rows = unit_rows(template, names, account_of, now)
                counters = counter_rows(names, target, rse_id, now)
                with conn.cursor() as cur:
                    for table in TABLES:
                        copy_rows(cur, table, template.columns[table], rows[table])
                    copy_rows(cur, "updated_rse_counters", ("id", "rse_id", "files", "bytes", "created_at",
                                                            "updated_at"), counters)
            yield u, True
