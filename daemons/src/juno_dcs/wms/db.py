"""SQL of the dispatcher (PostgreSQL, schema `wms`). Only SQL lives here: callers open the transaction
(`with pool.connection() as conn, conn.transaction():`) and pass `conn` down."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from juno_dcs.heartbeat import ALL, Share
from juno_dcs.migrations.check import checked_pool

Row = dict[str, Any]
Conn = psycopg.Connection[Row]
Pool = ConnectionPool[Conn]
AsyncConn = psycopg.AsyncConnection[Row]
AsyncPool = AsyncConnectionPool[AsyncConn]

LEASED = ("sent", "starting", "running", "holding")
JOB_COLUMNS = ("job_id", "task_id", "key", "spec", "cores", "memory_mb", "walltime_s", "max_attempts", "priority",
               "pinned_site", "state")


def open_pool(url: str, size: int = 4) -> Pool:
    pool: Pool = checked_pool(url, "wms", size)
    return pool


# --- tasks
def insert_task(conn: Conn, name: str, kind: str, owner: str, priority: int) -> int | None:
    """The new task's id; None when a task of that name exists."""
    row = conn.execute("""INSERT INTO wms.tasks (name, kind, owner, priority) VALUES (%s, %s, %s, %s)
                          ON CONFLICT (name) DO NOTHING RETURNING task_id""", (name, kind, owner, priority)).fetchone()
    return None if row is None else int(row["task_id"])


def lock_task(conn: Conn, task_id: int) -> Row | None:
    return conn.execute("SELECT * FROM wms.tasks WHERE task_id = %s FOR UPDATE", (task_id,)).fetchone()


def get_task(conn: Conn, task_id: int) -> Row | None:
    return conn.execute("SELECT * FROM wms.tasks WHERE task_id = %s", (task_id,)).fetchone()


def list_tasks(conn: Conn, owner: str | None = None) -> list[Row]:
    if owner is None:
        return conn.execute("SELECT * FROM wms.tasks ORDER BY task_id").fetchall()
    return conn.execute("SELECT * FROM wms.tasks WHERE owner = %s ORDER BY task_id", (owner,)).fetchall()


def task_owner(conn: Conn, task_id: int) -> str | None:
    row = conn.execute("SELECT owner FROM wms.tasks WHERE task_id = %s", (task_id,)).fetchone()
    return None if row is None else str(row["owner"])


def job_owner(conn: Conn, job_id: int) -> str | None:
    row = conn.execute("SELECT t.owner FROM wms.jobs j JOIN wms.tasks t USING (task_id) WHERE j.job_id = %s",
                       (job_id,)).fetchone()
    return None if row is None else str(row["owner"])


def jobs_by_state(conn: Conn, task_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
    where, params = ("WHERE task_id = ANY(%s)", (list(task_ids),)) if task_ids is not None else ("", ())
    out: dict[int, dict[str, int]] = {}
    for r in conn.execute(f"SELECT task_id, state, count(*) AS n FROM wms.jobs {where} GROUP BY 1, 2",  # noqa: S608
                          params):
        out.setdefault(int(r["task_id"]), {})[r["state"]] = int(r["n"])
    return out


def existing_keys(conn: Conn, task_id: int, keys: Sequence[str]) -> dict[str, int]:
    rows = conn.execute("SELECT key, job_id FROM wms.jobs WHERE task_id = %s AND key = ANY(%s)",
                        (task_id, list(keys))).fetchall()
    return {r["key"]: int(r["job_id"]) for r in rows}


def insert_jobs(conn: Conn, jobs: Sequence[Row], reason: str) -> list[int]:
    """COPY the jobs (dicts with JOB_COLUMNS but job_id) and their first history row; their new ids, in order."""
    if not jobs:
        return []
    ids = [int(r["id"]) for r in conn.execute(
        "SELECT nextval('wms.jobs_job_id_seq') AS id FROM generate_series(1, %s)", (len(jobs),))]
    cols = ", ".join(JOB_COLUMNS)
    with conn.cursor() as cur:
        with cur.copy(f"COPY wms.jobs ({cols}) FROM STDIN") as copy:
            for job_id, job in zip(ids, jobs, strict=True):
                copy.write_row([job_id, *(Jsonb(job[c]) if c == "spec" else job[c] for c in JOB_COLUMNS[1:])])
        with cur.copy("COPY wms.job_history (job_id, attempt, state, reason) FROM STDIN") as copy:
            for job_id, job in zip(ids, jobs, strict=True):
                copy.write_row([job_id, 1, job["state"], reason])
    return ids


# --- jobs
def get_job(conn: Conn, job_id: int, lock: bool = False) -> Row | None:
    sql = """SELECT j.*, t.name AS task_name, t.owner FROM wms.jobs j JOIN wms.tasks t USING (task_id)
             WHERE j.job_id = %s"""
    return conn.execute(sql + (" FOR UPDATE OF j" if lock else ""), (job_id,)).fetchone()


def list_jobs(conn: Conn, task_id: int | None, state: str | None, site: str | None, limit: int,
              offset: int, owner: str | None = None) -> list[Row]:
    """Jobs by filters; with `owner`, only the jobs of that owner's tasks."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("task_id", task_id), ("state", state), ("site", site)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if owner is not None:
        where.append("task_id IN (SELECT task_id FROM wms.tasks WHERE owner = %s)")
        params.append(owner)
    sql = "SELECT * FROM wms.jobs" + (" WHERE " + " AND ".join(where) if where else "")  # noqa: S608  (column names are constants)
    return conn.execute(sql + " ORDER BY job_id LIMIT %s OFFSET %s", [*params, limit, offset]).fetchall()


def history(conn: Conn, job_id: int) -> list[Row]:
    return conn.execute("SELECT attempt, state, time, reason FROM wms.job_history WHERE job_id = %s ORDER BY id",
                        (job_id,)).fetchall()


def add_history(conn: Conn, rows: Sequence[tuple[int, int, str, str]]) -> None:
    """(job_id, attempt, state, reason) rows."""
    if len(rows) > 20:
        with conn.cursor() as cur, cur.copy(
                "COPY wms.job_history (job_id, attempt, state, reason) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    elif rows:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO wms.job_history (job_id, attempt, state, reason) VALUES (%s, %s, %s, %s)",
                            rows)


def update_job(conn: Conn, job_id: int, **values: Any) -> None:
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    conn.execute(f"UPDATE wms.jobs SET {sets}, modified = now() WHERE job_id = %(job_id)s",  # noqa: S608
                 {**{k: Jsonb(v) if isinstance(v, dict | list) else v for k, v in values.items()}, "job_id": job_id})


def lock_task_jobs(conn: Conn, task_id: int) -> list[Row]:
    return conn.execute("""SELECT * FROM wms.jobs WHERE task_id = %s AND state NOT IN ('finished', 'failed',
                           'cancelled') ORDER BY job_id FOR UPDATE""", (task_id,)).fetchall()


def cancel_jobs(conn: Conn, job_ids: Sequence[int]) -> None:
    conn.execute("""UPDATE wms.jobs SET state = 'cancelled', pilot_id = NULL, lease_until = NULL,
                    modified = now() WHERE job_id = ANY(%s)""", (list(job_ids),))


def command_kill(conn: Conn, job_ids: Sequence[int]) -> None:
    conn.execute("UPDATE wms.jobs SET command = 'kill', modified = now() WHERE job_id = ANY(%s)", (list(job_ids),))


# --- pilots
GETJOB = """
WITH picked AS (
    SELECT job_id FROM wms.jobs
    WHERE state = 'activated' AND queue = %(queue)s AND site = %(site)s AND cores <= %(cores)s
      AND memory_mb <= %(memory_mb)s AND walltime_s <= %(walltime_s)s
    ORDER BY priority DESC, job_id LIMIT 1 FOR UPDATE SKIP LOCKED
), sent AS (
    UPDATE wms.jobs j SET state = 'sent', pilot_id = %(pilot_id)s, finished_by = NULL,
        lease_until = now() + make_interval(secs => %(lease_s)s), modified = now()
    FROM picked WHERE j.job_id = picked.job_id RETURNING j.*
), hist AS (
    INSERT INTO wms.job_history (job_id, attempt, state, reason)
    SELECT job_id, attempt, 'sent', 'to pilot ' || %(pilot_id)s FROM sent
), pilot AS (
    INSERT INTO wms.pilots (pilot_id, site, queue, last_job)
    VALUES (%(pilot_id)s, %(site)s, %(queue)s, (SELECT job_id FROM sent))
    ON CONFLICT (pilot_id) DO UPDATE SET last_seen = now(), site = EXCLUDED.site, queue = EXCLUDED.queue,
        last_job = COALESCE(EXCLUDED.last_job, wms.pilots.last_job)
)
SELECT sent.*, t.name AS task_name, t.owner FROM sent JOIN wms.tasks t USING (task_id)
"""


def async_pool(url: str, size: int) -> AsyncPool:
    """A pool for the pilots' hot path, not yet open (open it in the event loop that uses it). Its connections
    are in autocommit: each statement given to them must be whole on its own, as GETJOB is."""
    return AsyncConnectionPool(url, min_size=1, max_size=size, open=False,
                               kwargs={"row_factory": dict_row, "autocommit": True})


async def get_job_for_pilot(conn: AsyncConn, pilot_id: str, site: str, queue: str, cores: int, memory_mb: int,
                            walltime_s: int, lease_s: int) -> Row | None:
    """Lease the best activated job that fits the slot to the pilot (activated -> sent), or None. One
    statement: it is atomic without a transaction around it, so it costs one round trip."""
    cur = await conn.execute(GETJOB, {"pilot_id": pilot_id, "site": site, "queue": queue, "cores": cores,
                                      "memory_mb": memory_mb, "walltime_s": walltime_s, "lease_s": lease_s})
    return await cur.fetchone()


def touch_pilot(conn: Conn, pilot_id: str) -> None:
    conn.execute("UPDATE wms.pilots SET last_seen = now() WHERE pilot_id = %s", (pilot_id,))


def renew_lease(conn: Conn, job_id: int, state: str, lease_s: int) -> None:
    conn.execute("""UPDATE wms.jobs SET state = %s, lease_until = now() + make_interval(secs => %s),
                    modified = now() WHERE job_id = %s""", (state, lease_s, job_id))


def list_pilots(conn: Conn, within_s: int | None = None) -> list[Row]:
    if within_s is None:
        return conn.execute("SELECT * FROM wms.pilots ORDER BY pilot_id").fetchall()
    return conn.execute("""SELECT * FROM wms.pilots WHERE last_seen > now() - make_interval(secs => %s)
                           ORDER BY pilot_id""", (within_s,)).fetchall()


def queue_counts(conn: Conn) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in conn.execute("""SELECT queue, state, count(*) AS n FROM wms.jobs WHERE queue IS NOT NULL
                             GROUP BY 1, 2"""):
        out.setdefault(r["queue"], {})[r["state"]] = int(r["n"])
    return out


def pilots_per_queue(conn: Conn, within_s: int) -> dict[str, int]:
    rows = conn.execute("""SELECT queue, count(*) AS n FROM wms.pilots
                           WHERE last_seen > now() - make_interval(secs => %s) GROUP BY 1""", (within_s,))
    return {r["queue"]: int(r["n"]) for r in rows}


# --- agent
def lock_defined(conn: Conn, limit: int, share: Share = ALL) -> list[Row]:
    """Defined jobs of this agent's share to broker (locked), each with its task's owner."""
    return conn.execute(f"""SELECT j.*, t.owner FROM wms.jobs j JOIN wms.tasks t USING (task_id)
                            WHERE j.state = 'defined' AND {share.sql('j.job_id')}
                            ORDER BY j.priority DESC, j.job_id
                            LIMIT %s FOR UPDATE OF j SKIP LOCKED""", (limit,)).fetchall()  # noqa: S608


def lock_expired(conn: Conn, limit: int, share: Share = ALL) -> list[Row]:
    """Jobs of this agent's share whose pilot's lease ran out (locked)."""
    return conn.execute(f"""SELECT * FROM wms.jobs WHERE state IN ('sent', 'starting', 'running', 'holding')
                            AND lease_until < now() AND {share.sql('job_id')}
                            ORDER BY lease_until LIMIT %s FOR UPDATE SKIP LOCKED""",  # noqa: S608
                        (limit,)).fetchall()


def queue_load(conn: Conn) -> dict[str, int]:
    rows = conn.execute("""SELECT queue, count(*) AS n FROM wms.jobs WHERE queue IS NOT NULL AND state IN
                           ('assigned', 'activated', 'sent', 'starting', 'running', 'holding') GROUP BY 1""")
    return {r["queue"]: int(r["n"]) for r in rows}


def activate_many(conn: Conn, rows: Sequence[tuple[int, str, str, str, str]]) -> None:
    """(job_id, site, queue, output_rse, reason): brokered jobs -> activated."""
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    conn.execute("""UPDATE wms.jobs j SET state = 'activated', site = v.site, queue = v.queue,
                        output_rse = v.rse, broker_reason = v.reason, modified = now()
                    FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[])
                        AS v(job_id, site, queue, rse, reason)
                    WHERE j.job_id = v.job_id""", [list(c) for c in cols])
