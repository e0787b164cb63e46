"""The one runner of the grid's long-running programs (after Rucio's `run_daemon`).

A daemon supplies `run_once(share) -> must_sleep`: one pass over its share of the work, True when it found
nothing to do (the runner sleeps `sleep_time`), False when work is left (the next pass starts at once).

    stop = stop_on_signals()                      # SIGTERM/SIGINT set it: the pass finishes, a sleep ends at once
    run_daemon("juno-wms agent", agent.run_once, stop=stop, once=False, sleep_time=5.0,
               heartbeats=Heartbeats("juno-wms agent", pool.connection))

- once-mode (`--run-once`): one pass over all the work (not a share; no heartbeat: an operator's "do it now",
  safe beside running instances because every daemon claims its items with row locks, try-locks or atomic
  updates); its exceptions propagate (to the command's exit code).
- loop: an exception in a pass is logged with its traceback and the loop goes on after a back-off that doubles
  with each failure in a row (from `sleep_time`, at most `max_backoff`, with jitter); a good pass resets it.
- heartbeats (juno_dcs.heartbeat): beaten before each pass, giving the pass its `Share`; removed at the end.
- `idle(seconds)`: how to sleep, for a daemon that can be woken early (the transfer worker LISTENs); it must
  return when `stop` is set or soon after. Default: `stop.wait(seconds)`.

Start-up errors (a JunoDcsError from reading the configuration) are the command's: the click commands of the
kit (juno_dcs.clikit) turn a ConfigError into exit code 2 before the runner starts.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType

from juno_dcs import logsetup
from juno_dcs.heartbeat import ALL, Heartbeats, Share

logger = logging.getLogger(__name__)

RunOnce = Callable[[Share], bool]
Idle = Callable[[float], object]


def stop_on_signals(stop: threading.Event | None = None, on_stop: Callable[[int], None] | None = None,
                    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> threading.Event:
    """The stop event of a program: SIGTERM and SIGINT set it (and call `on_stop(signum)` first, from the signal
    handler: keep it short). The only place of the project that installs signal handlers; main thread only."""
    event = stop if stop is not None else threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping after the pass in progress", signum)
        if on_stop is not None:
            on_stop(signum)
        event.set()

    for sig in signals:
        signal.signal(sig, handler)
    return event


@contextmanager
def signals_set(stop: threading.Event, on_stop: Callable[[int], None] | None = None) -> Iterator[threading.Event]:
    """`stop_on_signals` for a while (a command that runs inside a longer-lived process, as spade-sim in a test):
    the previous handlers come back at the end."""
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    stop_on_signals(stop, on_stop, signals)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def configure_logging(log_json: bool, quiet: Iterable[str] = ()) -> None:
    """The daemons' logging: plain lines, or one JSON object per line with `--log-json`."""
    logsetup.configure(log_json, quiet=quiet)


class Backoff:
    """Seconds to wait after the n-th failed pass in a row: base * 2**(n-1), at most `maximum`, +-20 % jitter."""

    def __init__(self, base: float, maximum: float, jitter: Callable[[], float] | None = None) -> None:
        self.base = max(base, 0.5)
        self.maximum = max(maximum, self.base)
        self.failures = 0
        self.jitter = jitter or (lambda: random.uniform(0.8, 1.2))  # noqa: S311  # jitter, not cryptography

    def failed(self) -> float:
        self.failures += 1
        return float(min(self.base * 2 ** min(self.failures - 1, 16), self.maximum) * self.jitter())

    def succeeded(self) -> None:
        self.failures = 0


def run_daemon(executable: str, run_once: RunOnce, *, stop: threading.Event, once: bool = False,
               sleep_time: float = 10.0, heartbeats: Heartbeats | None = None, idle: Idle | None = None,
               max_backoff: float = 300.0) -> None:
    """Run `run_once` until `stop` is set (or once). See the module docstring for the rules."""
    wait: Idle = idle if idle is not None else stop.wait
    if once:  # all the work, without a beat: the daemons' row locks and claims make that safe beside others
        run_once(ALL)
        return
    backoff = Backoff(sleep_time, max_backoff)
    logger.info("%s running (sleep %.1f s)", executable, sleep_time)
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                share = heartbeats.beat() if heartbeats is not None else ALL
                must_sleep = run_once(share)
            except Exception:
                delay = backoff.failed()
                logger.exception("%s: pass failed (%d in a row); next pass in %.1f s", executable,
                                 backoff.failures, delay)
                stop.wait(delay)
                continue
            backoff.succeeded()
            if must_sleep and not stop.is_set():
                wait(max(0.0, sleep_time - (time.monotonic() - started)) if sleep_time else 0.0)
    finally:
        if heartbeats is not None:
            heartbeats.die()
        logger.info("%s stopped", executable)
