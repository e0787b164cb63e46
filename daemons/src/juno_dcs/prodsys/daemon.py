"""`juno-prod run`: passes over the active productions, each under its advisory lock, until stopped.

`run_once(manager) -> must_sleep`: one pass; a production that another instance holds is skipped. In
once-mode exceptions propagate; in the loop a failing production is logged and left until the next pass
(the others go on), and the loop sleeps `sleep` seconds (with jitter) after a pass that created nothing.
"""

from __future__ import annotations

import logging
import random
import threading

import psycopg

from juno_dcs.prodsys.logic import ACTIVE, Manager

logger = logging.getLogger(__name__)


def run_once(manager: Manager, *, stop: threading.Event | None = None, raise_errors: bool = True) -> bool:
    """One pass over every submitting or running production; True when nothing was created (sleep)."""
    created = 0
    for row in manager.store.productions(ACTIVE):
        if stop is not None and stop.is_set():
            break
        pid = int(row["production_id"])
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


def run(manager: Manager, stop: threading.Event, sleep: float) -> None:
    """Passes until `stop` is set."""
    logger.info("production manager running (sleep %.1f s)", sleep)
    while not stop.is_set():
        try:
            must_sleep = run_once(manager, stop=stop, raise_errors=False)
        except Exception:  # the database or the dispatcher went away: try again after the sleep
            logger.exception("pass failed")
            must_sleep = True
        if not stop.is_set():
            try:
                if manager.store.reconnect_if_lost():
                    logger.warning("connected to the database again")
            except psycopg.OperationalError as exc:  # still away: the next pass tries again
                logger.warning("the database still refuses: %s", " ".join(str(exc).split())[:200])
        if must_sleep:
            stop.wait(sleep * random.uniform(0.8, 1.2))  # noqa: S311  # jitter, not cryptography
    logger.info("production manager stopped")
