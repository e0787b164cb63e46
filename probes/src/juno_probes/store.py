"""The monitoring database: schema `monitor` in the grid's PostgreSQL, written by the probes, read by the dashboard.

Tables: `monitor.probe_run` (one row per probe run), `monitor.tpc_attempt` (one row per third-party copy of a
`tpc` run) and `monitor.schedule_slot` (the schedulers' claims: one row per schedule and probe, named
`SCHEDULE/PROBE`, with its next due time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from juno_probes.nagios import Result, Status

SCHEMA_LOCK = 0x4A554E4F  # advisory lock key ("JUNO") held while the schema is created

_DDL = """
CREATE SCHEMA IF NOT EXISTS monitor;
CREATE TABLE IF NOT EXISTS monitor.probe_run (
    id bigserial PRIMARY KEY,
    probe text NOT NULL,
    status smallint NOT NULL,
    message text NOT NULL,
    perfdata jsonb NOT NULL DEFAULT '{}',
    details jsonb NOT NULL DEFAULT '{}',
    started_at timestamptz NOT NULL,
    duration_s double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS probe_run_probe_started ON monitor.probe_run (probe, started_at);
CREATE TABLE IF NOT EXISTS monitor.tpc_attempt (
    id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES monitor.probe_run (id) ON DELETE CASCADE,
    source text NOT NULL,
    destination text NOT NULL,
    mode text NOT NULL,
    ok boolean NOT NULL,
    duration_s double precision NOT NULL,
    throughput_mb_s double precision,
    error text,
    at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS tpc_attempt_link ON monitor.tpc_attempt (source, destination, mode, at);
CREATE INDEX IF NOT EXISTS tpc_attempt_at ON monitor.tpc_attempt (at);
CREATE TABLE IF NOT EXISTS monitor.schedule_slot (
    slot text PRIMARY KEY,
    next_run timestamptz NOT NULL,
    claimed_by text,
    claimed_at timestamptz
);
"""


@dataclass(frozen=True)
class StoredRun:
    id: int
    probe: str
    status: Status
    message: str
    perfdata: dict[str, str]
    details: dict[str, Any]
    started_at: datetime
    duration_s: float


@dataclass(frozen=True)
class TpcAttempt:
    source: str
    destination: str
    mode: str
    ok: bool
    duration_s: float
    throughput_mb_s: float | None
    error: str | None
    at: datetime


def connect(dsn: str) -> psycopg.Connection[TupleRow]:
    """An autocommit connection; the caller closes it."""
    return psycopg.connect(dsn, autocommit=True)


def ensure_schema(conn: psycopg.Connection[TupleRow]) -> None:
    """Create the schema and its tables if missing; an advisory lock serialises two processes doing it at once."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute(_DDL)


def record_run(conn: psycopg.Connection[TupleRow], probe: str, result: Result, started_at: datetime,
               duration_s: float, details: Mapping[str, Any] | None = None) -> int:
    row = conn.execute(
        "INSERT INTO monitor.probe_run (probe, status, message, perfdata, details, started_at, duration_s)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (probe, int(result.status), result.message, json.dumps(result.perfdata), json.dumps(dict(details or {})),
         started_at, duration_s),
    ).fetchone()
    if row is None:
        raise RuntimeError("INSERT ... RETURNING id returned no row")
    return int(row[0])


def record_tpc(conn: psycopg.Connection[TupleRow], run_id: int, attempts: Sequence[TpcAttempt]) -> None:
    if not attempts:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO monitor.tpc_attempt (run_id, source, destination, mode, ok, duration_s, throughput_mb_s,"
            " error, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(run_id, a.source, a.destination, a.mode, a.ok, a.duration_s, a.throughput_mb_s, a.error, a.at)
             for a in attempts],
        )




def _run(row: TupleRow) -> StoredRun:
    return StoredRun(id=int(row[0]), probe=row[1], status=Status(row[2]), message=row[3],
                     perfdata={str(k): str(v) for k, v in dict(row[4]).items()}, details=dict(row[5]),
                     started_at=row[6], duration_s=float(row[7]))


def _attempt(row: TupleRow) -> TpcAttempt:
    return TpcAttempt(source=row[0], destination=row[1], mode=row[2], ok=bool(row[3]), duration_s=float(row[4]),
                      throughput_mb_s=None if row[5] is None else float(row[5]), error=row[6], at=row[7])


def latest_runs(conn: psycopg.Connection[TupleRow]) -> list[StoredRun]:
    """The newest run of every probe, by probe name."""
    rows = conn.execute(
        "SELECT DISTINCT ON (probe) id, probe, status, message, perfdata, details, started_at, duration_s"
        " FROM monitor.probe_run ORDER BY probe, started_at DESC, id DESC"
    ).fetchall()
    return [_run(r) for r in rows]


def runs(conn: psycopg.Connection[TupleRow], probe: str, since: datetime) -> list[StoredRun]:
    """The runs of one probe started at or after `since`, oldest first."""
    rows = conn.execute(
        "SELECT id, probe, status, message, perfdata, details, started_at, duration_s"
        " FROM monitor.probe_run WHERE probe = %s AND started_at >= %s"
        " ORDER BY started_at, id", (probe, since),
    ).fetchall()
    return [_run(r) for r in rows]


def tpc_matrix(conn: psycopg.Connection[TupleRow]) -> list[TpcAttempt]:
    """The newest attempt per source, destination and mode."""
    rows = conn.execute(
        "SELECT DISTINCT ON (source, destination, mode)"
        " source, destination, mode, ok, duration_s, throughput_mb_s, error, at"
        " FROM monitor.tpc_attempt"
        " ORDER BY source, destination, mode, at DESC, id DESC"
    ).fetchall()
    return [_attempt(r) for r in rows]


def tpc_history(conn: psycopg.Connection[TupleRow], since: datetime) -> list[TpcAttempt]:
    """Every attempt at or after `since`, oldest first."""
    rows = conn.execute(
        "SELECT source, destination, mode, ok, duration_s, throughput_mb_s, error, at"
        " FROM monitor.tpc_attempt WHERE at >= %s ORDER BY at, id", (since,),
    ).fetchall()
    return [_attempt(r) for r in rows]
