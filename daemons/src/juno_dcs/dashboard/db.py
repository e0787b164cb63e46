"""The dashboard's own samples: schema `dashboard` in the grid's PostgreSQL (SQL only here).

    dashboard.sample (series, key, slot, value)   primary key (series, key, slot)

A sample slot is written with INSERT ... ON CONFLICT DO UPDATE: two collectors sampling the same slot, or one
collector bucketing the same transfers again, leave one row with the latest value."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import psycopg
from psycopg.rows import TupleRow

from juno_dcs.dashboard.aggregate import Sample
from juno_dcs.migrations.check import require_head

Conn = psycopg.Connection[TupleRow]


def connect(dsn: str) -> Conn:
    """An autocommit connection; the caller closes it."""
    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


def check_schema(conn: Conn) -> None:
    """Refuse a schema that is not at the version this code needs (juno_dcs.migrations makes it)."""
    require_head(conn, "dashboard")


def upsert(conn: Conn, samples: Iterable[Sample]) -> int:
    rows = [(s.series, s.key, datetime.fromtimestamp(s.slot, UTC), s.value) for s in samples]
    if not rows:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dashboard.sample (series, key, slot, value) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (series, key, slot) DO UPDATE SET value = EXCLUDED.value, written_at = now()", rows)
    return len(rows)


def read(conn: Conn, series: str, since: float, keys: Iterable[str] | None = None) -> list[Sample]:
    wanted = list(keys) if keys is not None else None
    rows = conn.execute(
        "SELECT key, extract(epoch FROM slot)::bigint, value FROM dashboard.sample"
        " WHERE series = %s AND slot >= %s AND (%s::text[] IS NULL OR key = ANY(%s::text[])) ORDER BY slot",
        (series, datetime.fromtimestamp(since, UTC), wanted, wanted)).fetchall()
    return [Sample(series, str(k), int(slot), float(v)) for k, slot, v in rows]


def prune(conn: Conn, before: float) -> int:
    cur = conn.execute("DELETE FROM dashboard.sample WHERE slot < %s", (datetime.fromtimestamp(before, UTC),))
    return cur.rowcount
