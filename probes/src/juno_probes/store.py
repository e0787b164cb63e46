"""The probes' results: schema `probes` in the grid's PostgreSQL (`monitor` before version 2 of its migrations),
written by the probes, read by the dashboard. The schema is made and upgraded by juno_dcs.migrations.

Tables: `probes.probe_run` (one row per probe run), `probes.tpc_attempt` (one row per third-party copy of a
`tpc` run) and `probes.schedule_slot` (the schedulers' claims: one row per schedule and probe, named
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

from juno_dcs.migrations.check import require_head
from juno_probes.nagios import Result, Status


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


def check_schema(conn: psycopg.Connection[TupleRow]) -> None:
    """Refuse a schema that is not at the version this code needs: juno_dcs.migrations makes and upgrades it
    (the versions are in juno_probes/migrations)."""
    require_head(conn, "probes")


def record_run(conn: psycopg.Connection[TupleRow], probe: str, result: Result, started_at: datetime,
               duration_s: float, details: Mapping[str, Any] | None = None) -> int:
    row = conn.execute(
        "INSERT INTO probes.probe_run (probe, status, message, perfdata, details, started_at, duration_s)"
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
            "INSERT INTO probes.tpc_attempt (run_id, source, destination, mode, ok, duration_s, throughput_mb_s,"
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
        " FROM probes.probe_run ORDER BY probe, started_at DESC, id DESC"
    ).fetchall()
    return [_run(r) for r in rows]


def runs(conn: psycopg.Connection[TupleRow], probe: str, since: datetime) -> list[StoredRun]:
    """The runs of one probe started at or after `since`, oldest first."""
    rows = conn.execute(
        "SELECT id, probe, status, message, perfdata, details, started_at, duration_s"
        " FROM probes.probe_run WHERE probe = %s AND started_at >= %s"
        " ORDER BY started_at, id", (probe, since),
    ).fetchall()
    return [_run(r) for r in rows]


def tpc_matrix(conn: psycopg.Connection[TupleRow]) -> list[TpcAttempt]:
    """The newest attempt per source, destination and mode."""
    rows = conn.execute(
        "SELECT DISTINCT ON (source, destination, mode)"
        " source, destination, mode, ok, duration_s, throughput_mb_s, error, at"
        " FROM probes.tpc_attempt"
        " ORDER BY source, destination, mode, at DESC, id DESC"
    ).fetchall()
    return [_attempt(r) for r in rows]


def tpc_history(conn: psycopg.Connection[TupleRow], since: datetime) -> list[TpcAttempt]:
    """Every attempt at or after `since`, oldest first."""
    rows = conn.execute(
        "SELECT source, destination, mode, ok, duration_s, throughput_mb_s, error, at"
        " FROM probes.tpc_attempt WHERE at >= %s ORDER BY at, id", (since,),
    ).fetchall()
    return [_attempt(r) for r in rows]
