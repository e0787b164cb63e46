"""`juno-prod run`: passes over the active productions, each under its advisory lock, until stopped.

`run_once(manager, share) -> must_sleep`: one pass over the productions of this instance's share (the production
id modulo the live instances' count, from the heartbeats); a production that another instance holds (while two
instances disagree on the count for one beat) is skipped thanks to its advisory lock. In once-mode exceptions
propagate; in the loop a failing production is logged and left until the next pass (the others go on). `run` hands
the passes to the runner (juno_dcs.daemon), which sleeps `sleep` seconds after a pass that created nothing. Before
each pass (and each heartbeat) a connection that PostgreSQL dropped is made again. The heartbeats go through the
store's own connection, between passes: the daemon holds one connection.

With Rucio's events (`events` in the config, prodsys/events.py) the daemon sleeps until an event names a dataset of
a step, then passes over the productions that dataset belongs to only; a full pass comes at least every
`reconcile` seconds, and whenever a pass left work. Without events, or while the broker is down, only the full
passes remain, so nothing waits longer than `reconcile` for a lost message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from juno_dcs.daemon import run_daemon
from juno_dcs.heartbeat import ALL, Heartbeats, Share, timeout_for
from juno_dcs.prodsys import planning
from juno_dcs.prodsys.catalog import SCOPE
from juno_dcs.prodsys.db import Row, Store
from juno_dcs.prodsys.events import EventsConfig, Listener, Wakeup
from juno_dcs.prodsys.logic import ACTIVE, Manager
from juno_dcs.prodsys.steering import Steering

logger = logging.getLogger(__name__)
EXECUTABLE = "juno-prod run"


def run_once(manager: Manager, share: Share = ALL, *, stop: threading.Event | None = None,
             raise_errors: bool = True, only: set[str] | None = None) -> bool:
    """One pass over every submitting or running production of this share (`only`: those with a step dataset
    among these DIDs); True when nothing was created."""
    created = 0
    for row in manager.store.productions(ACTIVE):
        if stop is not None and stop.is_set():
            break
        pid = int(row["production_id"])
        if not share.takes(pid):
            continue
        if only is not None and not only & step_dids(row):
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


def step_dids(row: Row) -> set[str]:
    """The DIDs of a production's step datasets (those whose events concern it)."""
    steering = Steering.model_validate(row["steering"])
    return {f"{SCOPE}:{planning.dataset(steering, step)}" for step in steering.workflow}


class EventDriven:
    """The passes of a daemon woken by Rucio's events: `run_once` is targeted at the woken productions unless a
    full pass is due; `idle` waits for an event, the stop, or the next full pass."""

    def __init__(self, manager: Manager, listener: Listener, wakeup: Wakeup, stop: threading.Event,
                 reconcile: float) -> None:
        self.manager, self.listener, self.wakeup, self.stop = manager, listener, wakeup, stop
        self.reconcile = reconcile
        self.next_full = 0.0  # monotonic time of the next full pass
        self.passes = {"full": 0, "woken": 0}

    def run_once(self, share: Share) -> bool:
        _reconnect(self.manager.store)
        woken = self.wakeup.take()
        if woken and time.monotonic() < self.next_full:
            self.passes["woken"] += 1
            logger.info("woken by events of %s", ", ".join(sorted(woken)))
            run_once(self.manager, share, stop=self.stop, raise_errors=False, only=woken)
            return True  # idle next: it returns at once when more events came meanwhile
        self.passes["full"] += 1
        self.next_full = time.monotonic() + self.reconcile
        return run_once(self.manager, share, stop=self.stop, raise_errors=False)

    def idle(self, seconds: float) -> None:
        self.listener.ensure()
        left = min(seconds, max(0.0, self.next_full - time.monotonic()))
        # while the broker is down, wake up to connect again; the full passes go on meanwhile
        limit = left if self.listener.connected else min(left, self.listener.config.retry_s)
        self.wakeup.wait(limit, self.stop)


def run(manager: Manager, stop: threading.Event, sleep: float, *, once: bool = False,
        beats: Heartbeats | None = None, events: EventsConfig | None = None, reconcile: float = 60.0) -> None:
    """Passes until `stop` is set (or one, with `once`); with `events`, woken by Rucio's events between full
    passes every `reconcile` seconds."""

    def one(share: Share) -> bool:
        _reconnect(manager.store)
        return run_once(manager, share, stop=stop, raise_errors=once)

    if once or events is None:
        run_daemon(EXECUTABLE, one, stop=stop, once=once, sleep_time=sleep, heartbeats=beats)
        return
    wakeup = Wakeup()
    listener = Listener(events, wakeup, SCOPE)
    driven = EventDriven(manager, listener, wakeup, stop, reconcile)
    listener.ensure()
    try:
        run_daemon(EXECUTABLE, driven.run_once, stop=stop, sleep_time=reconcile, heartbeats=beats,
                   idle=driven.idle)
    finally:
        listener.close()
        logger.info("passes: %d full, %d on events (%d events received)", driven.passes["full"],
                    driven.passes["woken"], wakeup.received)
