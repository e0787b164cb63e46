"""`juno-prod run`: passes over the active productions, each under its advisory lock, until stopped.

`run_once(manager, share) -> must_sleep`: one pass over the productions of this instance's share (the production
id modulo the live instances' count, from the heartbeats); a production that another instance holds (while two
instances disagree on the count for one beat) is skipped thanks to its advisory lock. In once-mode exceptions
propagate; in the loop a failing production is logged and left until the next pass (the others go on). `run` hands
the passes to the runner (juno_dcs.daemon), which sleeps `sleep` seconds after a pass that created nothing. Before
each pass (and each heartbeat) a connection that PostgreSQL dropped is made again. The heartbeats go through the
store's own connection, between passes: the daemon holds one connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from juno_dcs.daemon import run_daemon
from juno_dcs.heartbeat import ALL, Heartbeats, Share, timeout_for
from juno_dcs.prodsys.db import Store
from juno_dcs.prodsys.logic import ACTIVE, Manager

logger = logging.getLogger(__name__)
EXECUTABLE = "juno-prod run"


def run_once(manager: Manager, share: Share = ALL, *, stop: threading.Event | None = None,
             raise_errors: bool = True) -> bool:
    """One pass over every submitting or running production of this share; True when nothing was created."""
    created = 0
    for row in manager.store.productions(ACTIVE):
        if stop is not None and stop.is_set():
            break
        pid = int(row["production_id"])
        if not share.takes(pid):
            continue
        if not manager.store.try_lock(pid):
            logger.debug("production %s: held by another instance", row["name"])
            continue
        try:
            created += manager.process(pid)
        except Exception:
            if raise_errors:
                raise
            logger.exception("production %s: this pass failed; retried in the next", row["name"])
        finally:
            manager.store.unlock(pid)
    return created == 0


def _reconnect(store: Store) -> None:
    """Connect again when PostgreSQL dropped the store's connection (raises while it still refuses)."""
    try:
        if store.reconnect_if_lost():
            logger.warning("connected to the database again")
    except psycopg.OperationalError as exc:
        raise psycopg.OperationalError(f"the database still refuses: {' '.join(str(exc).split())[:200]}") from exc


def heartbeats(store: Store, sleep: float) -> Heartbeats:
    """The heartbeats of this instance, through the store's connection (no connection of their own)."""

    @contextmanager
    def connection() -> Iterator[psycopg.Connection[Any]]:
        _reconnect(store)
        yield store.conn

    return Heartbeats(EXECUTABLE, connection, timeout_for(sleep))


def run(manager: Manager, stop: threading.Event, sleep: float, *, once: bool = False,
        beats: Heartbeats | None = None) -> None:
    """Passes until `stop` is set (or one, with `once`)."""

    def one(share: Share) -> bool:
        _reconnect(manager.store)
        return run_once(manager, share, stop=stop, raise_errors=once)

    run_daemon(EXECUTABLE, one, stop=stop, once=once, sleep_time=sleep, heartbeats=beats)
