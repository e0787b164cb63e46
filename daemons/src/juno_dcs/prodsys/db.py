"""SQL of the production manager (PostgreSQL, schema `prodsys`). Only SQL lives here: `Store` wraps one
connection; callers that need several statements at once open `store.transaction()`.

    prodsys.productions  one row per production: its steering (jsonb), state, planned job count, rule ids
    prodsys.steps        one row per (production, step): the dispatcher task, whether its datasets are closed
    prodsys.jobs         one row per job created at the dispatcher: (production, step, job number) -> job id
    prodsys.history      what was done to a production, when (submit, extend, pause, resume, kill, close...)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from juno_dcs.migrations.check import require_head

Row = dict[str, Any]
LOCK_CLASS = 7701  # pg advisory locks (LOCK_CLASS, production id): one instance works a production at a time


class Store:
    """The production manager's tables through one connection (autocommit outside `transaction()`)."""

    def __init__(self, conn: psycopg.Connection[Row], url: str | None = None) -> None:
        self.conn = conn
        self.url = url  # to connect again after the database went away (None: a borrowed connection)

    @staticmethod
    def _open(url: str) -> psycopg.Connection[Row]:
        return psycopg.connect(url, autocommit=True, row_factory=dict_row)

    @classmethod
    def connect(cls, url: str) -> Store:
        store = cls(cls._open(url), url)
        try:
            store.check_schema()
        except BaseException:
            store.close()
            raise
        return store

    def reconnect_if_lost(self) -> bool:
        """A new connection when the current one is closed or broken (PostgreSQL restarted, the grid's role
        refused for a while); True when it connected again. Raises psycopg.OperationalError while the database
        still refuses. The advisory locks of the lost session are gone with it."""
        if self.url is None or not (self.conn.closed or self.conn.broken):
            return False
        self.conn.close()
        self.conn = self._open(self.url)
        return True

    def close(self) -> None:
        self.conn.close()

    def check_schema(self) -> None:
        """Refuse a schema that is not at the version this code needs (juno_dcs.migrations makes it)."""
        require_head(self.conn, "prodsys")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    # --- productions
    def insert_production(self, name: str, steering: Row, jobs: int, steps: Sequence[str]) -> tuple[int, bool]:
        """(id, created): a new production in state 'submitting' with its steps, or the existing one's id."""
        with self.transaction():
            row = self.conn.execute(
                "INSERT INTO prodsys.productions (name, steering, state, jobs) VALUES (%s, %s, 'submitting', %s) "
                "ON CONFLICT (name) DO NOTHING RETURNING production_id", (name, Jsonb(steering), jobs)).fetchone()
            if row is None:
                found = self.conn.execute("SELECT production_id FROM prodsys.productions WHERE name = %s",
                                          (name,)).fetchone()
                return int(_one(found)["production_id"]), False
            pid = int(row["production_id"])
            for position, step in enumerate(steps):
                self.conn.execute("INSERT INTO prodsys.steps (production_id, step, position) VALUES (%s, %s, %s)",
                                  (pid, step, position))
            self.conn.execute("INSERT INTO prodsys.history (production_id, action, detail) VALUES (%s, 'submit', %s)",
                              (pid, f"{jobs} jobs"))
            return pid, True

    def production(self, key: int | str) -> Row | None:
        column = "production_id" if isinstance(key, int) else "name"
        return self.conn.execute(f"SELECT * FROM prodsys.productions WHERE {column} = %s",  # noqa: S608
                                 (key,)).fetchone()

    def productions(self, states: Sequence[str] | None = None) -> list[Row]:
        if states is None:
            return self.conn.execute("SELECT * FROM prodsys.productions ORDER BY production_id").fetchall()
        return self.conn.execute("SELECT * FROM prodsys.productions WHERE state = ANY(%s) ORDER BY production_id",
                                 (list(states),)).fetchall()

    def set_state(self, pid: int, state: str, *, only_from: Sequence[str], detail: str = "") -> bool:
        """Change the state when it is one of `only_from`; whether it changed."""
        with self.transaction():
            row = self.conn.execute(
                "UPDATE prodsys.productions SET state = %s, updated = now() "
                "WHERE production_id = %s AND state = ANY(%s) RETURNING production_id",
                (state, pid, list(only_from))).fetchone()
            if row is not None:
                self.note(pid, state, detail)
            return row is not None

    def add_planned_jobs(self, pid: int, more: int) -> int:
        """The planned job count after adding `more`."""
        with self.transaction():
            row = self.conn.execute("UPDATE prodsys.productions SET jobs = jobs + %s, updated = now() "
                                    "WHERE production_id = %s RETURNING jobs", (more, pid)).fetchone()
            jobs = int(_one(row)["jobs"])
            self.note(pid, "extend", f"+{more} jobs: {jobs}")
            return jobs

    def set_rule_ids(self, pid: int, rule_ids: list[str]) -> None:
        self.conn.execute("UPDATE prodsys.productions SET rule_ids = %s, updated = now() WHERE production_id = %s",
                          (Jsonb(rule_ids), pid))

    def note(self, pid: int, action: str, detail: str = "") -> None:
        self.conn.execute("INSERT INTO prodsys.history (production_id, action, detail) VALUES (%s, %s, %s)",
                          (pid, action, detail))

    def history(self, pid: int) -> list[Row]:
        return self.conn.execute("SELECT time, action, detail FROM prodsys.history WHERE production_id = %s "
                                 "ORDER BY time", (pid,)).fetchall()

    # --- steps and jobs
    def steps(self, pid: int) -> list[Row]:
        return self.conn.execute("SELECT * FROM prodsys.steps WHERE production_id = %s ORDER BY position",
                                 (pid,)).fetchall()

    def set_task(self, pid: int, step: str, task_id: int) -> int:
        """Record the step's task (the first one recorded wins); the recorded task id."""
        row = self.conn.execute(
            "UPDATE prodsys.steps SET task_id = COALESCE(task_id, %s) WHERE production_id = %s AND step = %s "
            "RETURNING task_id", (task_id, pid, step)).fetchone()
        return int(_one(row)["task_id"])

    def set_closed(self, pid: int, step: str) -> None:
        self.conn.execute("UPDATE prodsys.steps SET closed = true WHERE production_id = %s AND step = %s",
                          (pid, step))

    def job_numbers(self, pid: int, step: str) -> set[int]:
        rows = self.conn.execute("SELECT job_number FROM prodsys.jobs WHERE production_id = %s AND step = %s",
                                 (pid, step)).fetchall()
        return {int(r["job_number"]) for r in rows}

    def record_jobs(self, pid: int, step: str, jobs: Sequence[tuple[int, int, str | None]]) -> None:
        """(job number, dispatcher job id, input DID) rows; rows that exist stay as they are."""
        with self.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO prodsys.jobs (production_id, step, job_number, job_id, input) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(pid, step, number, job_id, inp) for number, job_id, inp in jobs])

    def job_counts(self, pid: int) -> dict[str, int]:
        rows = self.conn.execute("SELECT step, count(*) AS n FROM prodsys.jobs WHERE production_id = %s "
                                 "GROUP BY step", (pid,)).fetchall()
        return {str(r["step"]): int(r["n"]) for r in rows}

    # --- instances
    def try_lock(self, pid: int) -> bool:
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4) AS ok", (LOCK_CLASS, pid)).fetchone()
        return bool(row and row["ok"])

    def unlock(self, pid: int) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", (LOCK_CLASS, pid))


def _one(row: Row | None) -> Row:
    if row is None:
        raise LookupError("a row the statement should have found is missing (deleted meanwhile?)")
    return row
