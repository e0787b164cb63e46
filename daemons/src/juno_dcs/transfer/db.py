"""SQL of the transfer service (PostgreSQL, schema `fts`). Only SQL lives here: callers open the
transaction (`with pool.connection() as conn, conn.transaction():`) and pass `conn` down."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from juno_dcs.heartbeat import ALL, Share
from juno_dcs.migrations.check import checked_pool

Row = dict[str, Any]

def open_pool(url: str, size: int = 4) -> ConnectionPool[psycopg.Connection[Row]]:
    pool: ConnectionPool[psycopg.Connection[Row]] = checked_pool(url, "fts", size)
    return pool


WORK_CHANNEL = "fts_work"  # NOTIFY on this channel when new work is committed


def listen(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A connection of its own that receives the NOTIFYs of new work."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"LISTEN {WORK_CHANNEL}")
    return conn


def wait_for_work(conn: psycopg.Connection[tuple[object, ...]], timeout: float) -> bool:
    """Wait up to `timeout` seconds for a NOTIFY of new work; True if one came."""
    return any(True for _ in conn.notifies(timeout=timeout, stop_after=1))


# --- jobs
def insert_job(conn: psycopg.Connection[Row], job: Row, files: Sequence[Row]) -> bool:
    """Insert a job and its files; False when the job id exists (a duplicate submission)."""
    row = conn.execute(
        """INSERT INTO fts.jobs (job_id, job_state, vo_name, user_dn, priority, params, job_metadata, copy_mode,
               verify_checksum, overwrite, retry, retry_delay, timeout, bring_online, archive_timeout, sid)
           VALUES (%(job_id)s, %(job_state)s, %(vo_name)s, %(user_dn)s, %(priority)s, %(params)s, %(job_metadata)s,
               %(copy_mode)s, %(verify_checksum)s, %(overwrite)s, %(retry)s, %(retry_delay)s, %(timeout)s,
               %(bring_online)s, %(archive_timeout)s, %(sid)s)
           ON CONFLICT (job_id) DO NOTHING RETURNING job_id""",
        {**job, "params": Jsonb(job["params"]), "job_metadata": Jsonb(job["job_metadata"])},
    ).fetchone()
    if row is None:
        return False
    conn.execute(f"NOTIFY {WORK_CHANNEL}")  # delivered at commit: idle workers wake at once
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO fts.files (job_id, file_index, source_rank, file_state, source_surl, dest_surl, source_se,
                   dest_se, source_token, dest_token, file_metadata, staging_metadata, archive_metadata, filesize,
                   checksum, activity)
               VALUES (%(job_id)s, %(file_index)s, %(source_rank)s, %(file_state)s, %(source_surl)s, %(dest_surl)s,
                   %(source_se)s, %(dest_se)s, %(source_token)s, %(dest_token)s, %(file_metadata)s,
                   %(staging_metadata)s, %(archive_metadata)s, %(filesize)s, %(checksum)s, %(activity)s)""",
            [{**f, "file_metadata": Jsonb(f["file_metadata"]), "staging_metadata": Jsonb(f["staging_metadata"]),
              "archive_metadata": Jsonb(f["archive_metadata"])} for f in files],
        )
    return True


def get_jobs(conn: psycopg.Connection[Row], job_ids: Sequence[str]) -> dict[str, Row]:
    rows = conn.execute("SELECT * FROM fts.jobs WHERE job_id = ANY(%s)", (list(job_ids),)).fetchall()
    return {r["job_id"]: r for r in rows}


def get_files(conn: psycopg.Connection[Row], job_ids: Sequence[str]) -> dict[str, list[Row]]:
    rows = conn.execute(
        "SELECT * FROM fts.files WHERE job_id = ANY(%s) ORDER BY job_id, file_index, source_rank", (list(job_ids),)
    ).fetchall()
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r["job_id"], []).append(r)
    return out


def list_jobs(conn: psycopg.Connection[Row], states: Sequence[str] | None, source_se: str | None,
              dest_se: str | None, vo_name: str | None, user_dn: str | None, since_hours: float | None,
              limit: int) -> list[Row]:
    clauses: list[str] = ["true"]
    args: list[Any] = []
    if states:
        clauses.append("job_state = ANY(%s)")
        args.append(list(states))
    for column, value in (("vo_name", vo_name), ("user_dn", user_dn)):
        if value:
            clauses.append(f"{column} = %s")
            args.append(value)
    if since_hours is not None:
        clauses.append("submit_time >= now() - make_interval(secs => %s)")
        args.append(since_hours * 3600)
    for column, value in (("source_se", source_se), ("dest_se", dest_se)):
        if value:
            clauses.append(f"EXISTS (SELECT 1 FROM fts.files f WHERE f.job_id = j.job_id AND f.{column} = %s)")  # noqa: S608  (fixed column names)
            args.append(value)
    args.append(limit)
    query = f"SELECT * FROM fts.jobs j WHERE {' AND '.join(clauses)} ORDER BY submit_time DESC LIMIT %s"  # noqa: S608
    return conn.execute(query, args).fetchall()


def lock_job(conn: psycopg.Connection[Row], job_id: str) -> Row | None:
    return conn.execute("SELECT * FROM fts.jobs WHERE job_id = %s FOR UPDATE", (job_id,)).fetchone()


def set_job_state(conn: psycopg.Connection[Row], job_id: str, state: str, final: bool, reason: str | None) -> None:
    conn.execute(
        """UPDATE fts.jobs SET job_state = %s, reason = COALESCE(%s, reason),
               job_finished = CASE WHEN %s THEN COALESCE(job_finished, now()) ELSE NULL END
           WHERE job_id = %s""",
        (state, reason, final, job_id),
    )


def set_priority(conn: psycopg.Connection[Row], job_id: str, priority: int) -> bool:
    cur = conn.execute("UPDATE fts.jobs SET priority = %s WHERE job_id = %s", (priority, job_id))
    return cur.rowcount == 1


# final file states: the tokens of a file in one of them are erased (docs/security.md)
TOKENLESS_STATES = frozenset({"FINISHED", "FAILED", "CANCELED"})


def cancel_files(conn: psycopg.Connection[Row], job_id: str) -> list[Row]:
    """Cancel every unfinished file of a job; returns the ones that were ACTIVE (their copies run on)."""
    conn.execute("UPDATE fts.jobs SET canceled = true WHERE job_id = %s", (job_id,))
    # RETURNING shows the row after the update: the token (erased here) comes from the row as it was, for the
    # removal of what a running copy leaves at its destination
    cancel = ("UPDATE fts.files f SET file_state = 'CANCELED', finish_time = now(), "
              "reason = 'Job canceled by the user', source_token = NULL, dest_token = NULL "
              "FROM (SELECT file_id, dest_token FROM fts.files WHERE job_id = %s AND file_state = ANY(%s) "
              "FOR UPDATE) AS was WHERE f.file_id = was.file_id RETURNING f.file_id, f.dest_surl, was.dest_token")
    running = conn.execute(cancel, (job_id, ["ACTIVE"])).fetchall()
    conn.execute(cancel, (job_id, ["SUBMITTED", "STAGING", "ARCHIVING"]))
    return running


def file_states(conn: psycopg.Connection[Row], job_id: str) -> list[tuple[int, str]]:
    rows = conn.execute("SELECT file_index, file_state FROM fts.files WHERE job_id = %s", (job_id,)).fetchall()
    return [(r["file_index"], r["file_state"]) for r in rows]


# --- the worker's queue
def waiting_links(conn: psycopg.Connection[Row]) -> list[Row]:
    return conn.execute(
        """SELECT source_se, dest_se,
                  count(*) FILTER (WHERE file_state = 'SUBMITTED' AND next_attempt <= now()) AS ready,
                  count(*) FILTER (WHERE file_state = 'ACTIVE') AS active
           FROM fts.files WHERE file_state IN ('SUBMITTED', 'ACTIVE')
           GROUP BY source_se, dest_se"""
    ).fetchall()


def claim(conn: psycopg.Connection[Row], source_se: str, dest_se: str, limit: int, worker: str,
          tape_sources: Sequence[str], share: Share = ALL) -> list[Row]:
    """Take up to `limit` ready files of one link and of this worker's share, highest priority first, skipping
    rows another worker holds; tape sources that were not staged yet are left for the stager."""
    return conn.execute(
        f"""WITH picked AS (
               SELECT f.file_id FROM fts.files f JOIN fts.jobs j USING (job_id)
               WHERE f.file_state = 'SUBMITTED' AND f.next_attempt <= now()
                 AND f.source_se = %s AND f.dest_se = %s AND {share.sql('f.file_id')}
                 AND (f.staging_finished IS NOT NULL OR NOT (f.source_se = ANY(%s)))
               ORDER BY j.priority DESC, f.file_id
               LIMIT %s FOR UPDATE OF f SKIP LOCKED)
           UPDATE fts.files f SET file_state = 'ACTIVE', start_time = now(), finish_time = NULL, reason = NULL,
                  worker = %s, heartbeat = now()
           FROM picked WHERE f.file_id = picked.file_id
           RETURNING f.*""",  # noqa: S608  # the share's condition is made of two integers
        (source_se, dest_se, list(tape_sources), limit, worker),
    ).fetchall()


def active_on_link(conn: psycopg.Connection[Row], source_se: str, dest_se: str) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM fts.files WHERE file_state = 'ACTIVE' AND source_se = %s AND dest_se = %s",
        (source_se, dest_se),
    ).fetchone()
    return int(row["n"]) if row else 0


def lock_link(conn: psycopg.Connection[Row], source_se: str, dest_se: str) -> None:
    """Serialize slot accounting of one link across workers and service instances."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{source_se} {dest_se}",))


def heartbeat(conn: psycopg.Connection[Row], file_ids: Iterable[int], worker: str) -> None:
    conn.execute("UPDATE fts.files SET heartbeat = now() WHERE file_id = ANY(%s) AND worker = %s "
                 "AND file_state = 'ACTIVE'", (list(file_ids), worker))


def stale_active(conn: psycopg.Connection[Row], lease_seconds: float) -> list[Row]:
    return conn.execute(
        """SELECT f.*, j.retry, j.retry_delay FROM fts.files f JOIN fts.jobs j USING (job_id)
           WHERE f.file_state = 'ACTIVE' AND f.heartbeat < now() - make_interval(secs => %s)
           FOR UPDATE OF f SKIP LOCKED""",
        (lease_seconds,),
    ).fetchall()


def job_of_file(conn: psycopg.Connection[Row], job_id: str) -> Row:
    row = conn.execute("SELECT * FROM fts.jobs WHERE job_id = %s", (job_id,)).fetchone()
    if row is None:
        raise LookupError(job_id)
    return row


def update_file(conn: psycopg.Connection[Row], file_id: int, only_if: str | None = None, **fields: Any) -> bool:
    """Set columns of one file; with `only_if`, only while the file is in that state. A file that reaches a
    final state drops its tokens: nothing needs them any more."""
    if fields.get("file_state") in TOKENLESS_STATES:
        fields = {**fields, "source_token": None, "dest_token": None}
    sets = ", ".join(f"{k} = %({k})s" for k in fields)
    values: dict[str, Any] = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in fields.items()}
    values["file_id"] = file_id
    condition = ""
    if only_if is not None:
        condition = " AND file_state = %(only_if)s"
        values["only_if"] = only_if
    cur = conn.execute(f"UPDATE fts.files SET {sets} WHERE file_id = %(file_id)s{condition}", values)  # noqa: S608
    return cur.rowcount == 1


def next_alternative(conn: psycopg.Connection[Row], job_id: str, file_index: int, after_rank: int) -> Row | None:
    return conn.execute(
        """SELECT * FROM fts.files WHERE job_id = %s AND file_index = %s AND source_rank > %s
               AND file_state = 'NOT_USED' AND start_time IS NULL ORDER BY source_rank LIMIT 1 FOR UPDATE""",
        (job_id, file_index, after_rank),
    ).fetchone()


def due(conn: psycopg.Connection[Row], state: str, limit: int = 100) -> list[Row]:
    return conn.execute(
        """SELECT * FROM fts.files WHERE file_state = %s AND next_attempt <= now()
           ORDER BY next_attempt LIMIT %s FOR UPDATE SKIP LOCKED""",
        (state, limit),
    ).fetchall()


def unstaged(conn: psycopg.Connection[Row], tape_sources: Sequence[str], limit: int = 100) -> list[Row]:
    return conn.execute(
        """SELECT * FROM fts.files WHERE file_state = 'SUBMITTED' AND source_se = ANY(%s)
               AND staging_start IS NULL ORDER BY file_id LIMIT %s FOR UPDATE SKIP LOCKED""",
        (list(tape_sources), limit),
    ).fetchall()


# --- links and the optimizer
def link_limit(conn: psycopg.Connection[Row], source_se: str, dest_se: str) -> int | None:
    row = conn.execute("SELECT active_limit FROM fts.link_limits WHERE source_se = %s AND dest_se = %s",
                       (source_se, dest_se)).fetchone()
    return int(row["active_limit"]) if row else None


def set_link_limit(conn: psycopg.Connection[Row], source_se: str, dest_se: str, limit: int) -> None:
    conn.execute(
        """INSERT INTO fts.link_limits (source_se, dest_se, active_limit) VALUES (%s, %s, %s)
           ON CONFLICT (source_se, dest_se) DO UPDATE SET active_limit = EXCLUDED.active_limit, updated = now()""",
        (source_se, dest_se, limit),
    )


def record_decision(conn: psycopg.Connection[Row], decision: Row) -> None:
    conn.execute(
        """INSERT INTO fts.optimizer_decisions (source_se, dest_se, previous, active_limit, success_rate, throughput,
               queued, reason)
           VALUES (%(source_se)s, %(dest_se)s, %(previous)s, %(active_limit)s, %(success_rate)s, %(throughput)s,
               %(queued)s, %(reason)s)""",
        decision,
    )


def link_window(conn: psycopg.Connection[Row], source_se: str, dest_se: str, seconds: float) -> Row:
    """Outcomes of a link's transfers that ended in the last `seconds`."""
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE file_state IN ('FINISHED', 'ARCHIVING')) AS ok,
                  count(*) FILTER (WHERE file_state = 'FAILED' OR (file_state = 'SUBMITTED' AND retry_count > 0))
                      AS failed,
                  coalesce(sum(transferred), 0) AS bytes,
                  avg(throughput) FILTER (WHERE throughput IS NOT NULL) AS throughput
           FROM fts.files WHERE source_se = %s AND dest_se = %s
               AND finish_time >= now() - make_interval(secs => %s)""",
        (source_se, dest_se, seconds),
    ).fetchone()
    return row or {"ok": 0, "failed": 0, "bytes": 0, "throughput": None}


def snapshot(conn: psycopg.Connection[Row], window_seconds: float) -> list[Row]:
    """Per link: active and queued transfers, outcomes and throughput over the window, current limit and
    the optimizer's last decision."""
    return conn.execute(
        """WITH links AS (SELECT DISTINCT source_se, dest_se FROM fts.files
                          UNION SELECT source_se, dest_se FROM fts.link_limits)
           SELECT l.source_se, l.dest_se,
               (SELECT count(*) FROM fts.files f WHERE f.source_se = l.source_se AND f.dest_se = l.dest_se
                    AND f.file_state = 'ACTIVE') AS active,
               (SELECT count(*) FROM fts.files f WHERE f.source_se = l.source_se AND f.dest_se = l.dest_se
                    AND f.file_state IN ('SUBMITTED', 'STAGING')) AS queued,
               (SELECT count(*) FROM fts.files f WHERE f.source_se = l.source_se AND f.dest_se = l.dest_se
                    AND f.file_state = 'FINISHED' AND f.finish_time >= now() - make_interval(secs => %(w)s))
                    AS finished,
               (SELECT count(*) FROM fts.files f WHERE f.source_se = l.source_se AND f.dest_se = l.dest_se
                    AND f.file_state = 'FAILED' AND f.finish_time >= now() - make_interval(secs => %(w)s))
                    AS failed,
               (SELECT coalesce(sum(transferred), 0) FROM fts.files f WHERE f.source_se = l.source_se
                    AND f.dest_se = l.dest_se AND f.file_state = 'FINISHED'
                    AND f.finish_time >= now() - make_interval(secs => %(w)s)) AS bytes,
               (SELECT avg(throughput) FROM fts.files f WHERE f.source_se = l.source_se AND f.dest_se = l.dest_se
                    AND f.file_state = 'FINISHED' AND f.finish_time >= now() - make_interval(secs => %(w)s))
                    AS avg_file_throughput,
               (SELECT active_limit FROM fts.link_limits k WHERE k.source_se = l.source_se
                    AND k.dest_se = l.dest_se) AS active_limit,
               (SELECT row_to_json(d) FROM (SELECT decided, previous, active_limit, success_rate, throughput, queued,
                    reason FROM fts.optimizer_decisions o WHERE o.source_se = l.source_se AND o.dest_se = l.dest_se
                    ORDER BY decision_id DESC LIMIT 1) d) AS last_decision
           FROM links l ORDER BY l.source_se, l.dest_se""",
        {"w": window_seconds},
    ).fetchall()


def decisions(conn: psycopg.Connection[Row], limit: int) -> list[Row]:
    return conn.execute("SELECT * FROM fts.optimizer_decisions ORDER BY decision_id DESC LIMIT %s",
                        (limit,)).fetchall()

