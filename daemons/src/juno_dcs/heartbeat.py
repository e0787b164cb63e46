"""Heartbeats of the grid's daemons in PostgreSQL, and each live instance's share of the work.

Every instance of a daemon (one process, or one thread of it) writes a row
(executable, hostname, pid, thread, updated_at) into `daemons.heartbeat` at every pass. The instances of one
executable that beat within `timeout` seconds are the live ones; rows older than that belong to instances that
stopped (killed, crashed, partitioned away) and are deleted by the next live beat. Ordered by
(hostname, pid, thread), the live rows give each instance its `Share`: index i of total n. A daemon then takes
only the items whose key hashes to its index (`Share.takes`, or `Share.sql` in a WHERE clause), as Rucio's
daemons do with their heartbeats' (worker_number, total_workers).

Shares change only at beats: for one timeout after an instance stops, its items wait; the survivors take them over
after their next beat. Daemons that claim rows with `SELECT ... FOR UPDATE SKIP LOCKED` stay correct while two
instances disagree on the total for a pass; the others must be idempotent (docs/admin.md, "The daemon runner").

The connections come from the daemon (`connect`): its own pool where it has one (no extra connection), or a
short-lived connection per beat.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg

logger = logging.getLogger(__name__)

Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]

# An advisory lock key, so that two daemons starting at once do not race on CREATE SCHEMA (which is not
# concurrency-safe in PostgreSQL even with IF NOT EXISTS).


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """The heartbeat table is there, at its schema's head: made and upgraded by the migrations (schema `daemons`,
    juno_dcs/migrations/daemons; `juno-dcs up` or juno_dcs.migrations.runner.upgrade_postgres), checked here."""
    from juno_dcs.migrations.check import require_head

    require_head(conn, "daemons")


@dataclass(frozen=True)
class Instance:
    """One instance of a daemon, as its heartbeat row names it."""

    executable: str
    hostname: str
    pid: int
    thread: str

    @classmethod
    def here(cls, executable: str, thread: str | None = None) -> Instance:
        """This process (and this thread, unless `thread` names another)."""
        return cls(executable, socket.gethostname(), os.getpid(), thread or threading.current_thread().name)


@dataclass(frozen=True)
class Share:
    """Instance `index` of `total` live ones: it takes the items whose key hashes to `index`."""

    index: int = 0
    total: int = 1

    def takes(self, key: int | str) -> bool:
        """Whether the item with this key is this instance's (a stable hash: the same in every process)."""
        return self.total <= 1 or stable_hash(key) % self.total == self.index

    def sql(self, column: str) -> str:
        """A WHERE condition on an integer column that selects this instance's rows (no user input in it)."""
        if self.total <= 1:
            return "TRUE"
        return f"mod({column}, {int(self.total)}) = {int(self.index)}"  # mod(), not %: a placeholder to psycopg


ALL = Share(0, 1)


def timeout_for(sleep_time: float) -> float:
    """How long an instance may stay silent before the others drop it: five sleeps, and at least a minute (a
    pass that runs longer than this only makes the shares shift for one beat; items are never lost)."""
    return max(60.0, 5 * sleep_time)


def stable_hash(key: int | str) -> int:
    """A non-negative hash that is the same in every process (Python's hash() of a str is salted per process)."""
    if isinstance(key, int):
        return abs(key)
    return zlib.crc32(key.encode())


class Heartbeats:
    """The heartbeats of one instance: `beat()` at every pass gives its share, `die()` at the end removes it."""

    def __init__(self, executable: str, connect: Connect, timeout: float = 60.0,
                 instance: Instance | None = None, every: float | None = None) -> None:
        """`every`: the shortest time between two beats that reach the database (default a sixth of `timeout`);
        a daemon whose passes are quicker (the ingestor polls every 200 ms) keeps its last share in between."""
        self.connect = connect
        self.timeout = timeout
        self.every = timeout / 6 if every is None else every
        self.instance = instance or Instance.here(executable)
        self._schema_ready = False
        self._last: float | None = None
        self.share = ALL

    def beat(self) -> Share:
        """Write this instance's beat, drop the instances that stopped beating, and return this one's share."""
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every:
            return self.share
        me = self.instance
        with self.connect() as conn:
            if not self._schema_ready:
                ensure_schema(conn)
                self._schema_ready = True
            with conn.transaction():
                conn.execute(
                    """INSERT INTO daemons.heartbeat (executable, hostname, pid, thread) VALUES (%s, %s, %s, %s)
                       ON CONFLICT (executable, hostname, pid, thread) DO UPDATE SET updated_at = now()""",
                    (me.executable, me.hostname, me.pid, me.thread))
                conn.execute(
                    """DELETE FROM daemons.heartbeat WHERE executable = %s
                       AND updated_at < now() - make_interval(secs => %s)""", (me.executable, self.timeout))
                rows = conn.execute(
                    """SELECT hostname, pid, thread FROM daemons.heartbeat WHERE executable = %s
                       ORDER BY hostname, pid, thread""", (me.executable,)).fetchall()
        live = [tuple(_values(r)) for r in rows]
        index = live.index((me.hostname, me.pid, me.thread))
        share = Share(index, len(live))
        if share != self.share:
            logger.info("%s: instance %d of %d", me.executable, share.index, share.total)
        self.share, self._last = share, now
        return share

    def die(self) -> None:
        """Remove this instance's row, so that the others take its share at their next beat."""
        me = self.instance
        try:
            with self.connect() as conn, conn.transaction():
                conn.execute(
                    "DELETE FROM daemons.heartbeat WHERE executable = %s AND hostname = %s AND pid = %s "
                    "AND thread = %s", (me.executable, me.hostname, me.pid, me.thread))
        except psycopg.Error as exc:  # the row times out on its own
            logger.warning("could not remove the heartbeat of %s: %s", me.executable, exc)


def _values(row: Any) -> list[Any]:
    """A row of any row factory (tuple or dict) as a list of its values."""
    return list(row.values()) if isinstance(row, dict) else list(row)


def per_beat_connections(dsn: str) -> Connect:
    """Connections for a daemon without a pool: one short-lived connection per beat (it holds one at most, and
    only while it beats)."""

    def connect() -> AbstractContextManager[psycopg.Connection[Any]]:
        return psycopg.connect(dsn, connect_timeout=10)

    return connect
