"""The production manager's daemon outlives its database connection: killed by PostgreSQL (a restart, the grid's
role refused for a while), the connection is made again and the passes go on. Before, every pass failed with
"the connection is closed" until someone restarted the program."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from juno_dcs.prodsys import daemon
from juno_dcs.prodsys.db import Store
from tests.integration.wms_helpers import ADMIN_URL, throwaway_database

pytestmark = pytest.mark.services


class _Manager:
    """What `daemon.run` needs of a Manager: its store (no production is active, so nothing else is asked)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.passes = 0


def _backend_pids(database: str) -> list[int]:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        return [int(r[0]) for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,))]


def test_the_daemon_connects_again_after_its_connection_is_killed() -> None:
    with throwaway_database("prodsys_reconnect") as url:
        database = url.rsplit("/", 1)[1]
        store = Store.connect(url)
        manager: Any = _Manager(store)
        first = store.conn
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
        stop = threading.Event()
        runner = threading.Thread(target=daemon.run, args=(manager, stop, 0.2), daemon=True)
        runner.start()
        deadline = time.monotonic() + 30
        while store.conn is first or store.conn.broken or store.conn.closed:
            assert time.monotonic() < deadline, "the daemon never connected again"
            time.sleep(0.1)
        assert store.productions(("running",)) == []  # the new connection works
        assert len(_backend_pids(database)) == 1
        stop.set()
        runner.join(timeout=10)
        assert not runner.is_alive()
        store.close()


def test_a_borrowed_connection_is_never_replaced() -> None:
    with throwaway_database("prodsys_reconnect") as url, psycopg.connect(url, autocommit=True) as conn:
        store = Store(conn)  # type: ignore[arg-type]
        conn.close()
        assert store.reconnect_if_lost() is False
