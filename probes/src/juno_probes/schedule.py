"""`juno-probe schedule --config FILE [--run-once]`: every enabled probe on its own interval, each run stored.

The daemon runner (juno_dcs.daemon) calls `Scheduler.run_once(share)` every `tick_s`. Schedulers of one schedule
share the probes by heartbeats (`daemons.heartbeat` in the monitoring database, beaten through the scheduler's own
connection): each runs the probes whose name hashes to its index. Slots are still claimed in the monitoring
database (`probes.schedule_slot`): a scheduler runs a probe only after
`UPDATE ... SET next_run = now() + interval WHERE slot = %s AND next_run <= now() RETURNING`, one atomic
statement, so two schedulers that disagree on their count (for one beat) never run the same probe twice for one
slot. A probe that raises is stored as UNKNOWN with the reason; SIGTERM stops the loop between probes.

This module parses the probes' arguments with juno_probes.options and runs them with juno_probes.probe; the
command line (juno_probes.cli) imports it, never the other way round.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
from psycopg.rows import TupleRow

from juno_dcs.daemon import configure_logging, run_daemon, stop_on_signals
from juno_dcs.heartbeat import ALL, Heartbeats, Share, timeout_for
from juno_probes import store
from juno_probes.config import ConfigError, ProbeSchedule, ProbesConfig
from juno_probes.nagios import Result, Status
from juno_probes.options import ProbeArgs, UsageError, parse
from juno_probes.probe import Outcome, execute, save

logger = logging.getLogger(__name__)


def probe_args(name: str, schedule: ProbeSchedule) -> ProbeArgs:
    try:
        return parse(name, schedule.args)
    except UsageError as exc:
        raise ConfigError(f"probes.{name}.args: {exc}") from exc


def enabled(config: ProbesConfig) -> dict[str, ProbeSchedule]:
    return {name: s for name, s in config.probes.items() if s.enabled}


def slot(config: ProbesConfig, probe: str) -> str:
    return f"{config.schedule}/{probe}"


def ensure_slots(conn: psycopg.Connection[TupleRow], config: ProbesConfig) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO probes.schedule_slot (slot, next_run) VALUES (%s, now())"
                        " ON CONFLICT (slot) DO NOTHING", [(slot(config, name),) for name in enabled(config)])


def claim(conn: psycopg.Connection[TupleRow], key: str, interval_s: float, me: str) -> bool:
    """Take this probe's due slot; False if it is not due or another scheduler took it. A slot further away
    than one interval (the interval was shortened) counts as due."""
    row = conn.execute(
        "UPDATE probes.schedule_slot SET next_run = now() + make_interval(secs => %(i)s),"
        " claimed_by = %(me)s, claimed_at = now()"
        " WHERE slot = %(s)s AND (next_run <= now() OR next_run > now() + make_interval(secs => %(i)s))"
        " RETURNING slot",
        {"i": interval_s, "me": me, "s": key},
    ).fetchone()
    return row is not None


def retry_soon(conn: psycopg.Connection[TupleRow], key: str, seconds: float) -> None:
    """Bring the next slot forward (after an UNKNOWN run: a service that was not up yet, say)."""
    conn.execute("UPDATE probes.schedule_slot SET next_run = least(next_run, now() + make_interval(secs => %s))"
                 " WHERE slot = %s", (seconds, key))


def run_one(name: str, schedule: ProbeSchedule, config: ProbesConfig, dsn: str, me: str) -> Status:
    started_at, started = datetime.now(UTC), time.monotonic()
    try:
        outcome = execute(probe_args(name, schedule), config)
    except ConfigError as exc:
        outcome = Outcome(Result(Status.UNKNOWN, str(exc)))
    duration = time.monotonic() - started
    scheduled = {"scheduled": {"schedule": config.schedule, "by": me}}
    run_id = save(dsn, name, Outcome(outcome.result, {**outcome.details, **scheduled}, outcome.attempts),
                  started_at, duration)
    logger.info("%s (run %d, %.1f s)", outcome.result.line(name), run_id, duration)
    return outcome.result.status


def run_due(conn: psycopg.Connection[TupleRow], config: ProbesConfig, dsn: str, me: str,
            stop: threading.Event, share: Share = ALL) -> list[str]:
    """Every due probe of this share once, in the configuration's order; the names of those that ran."""
    done = []
    for name, schedule in enabled(config).items():
        if stop.is_set():
            break
        if share.takes(name) and claim(conn, slot(config, name), schedule.interval_s, me):
            if run_one(name, schedule, config, dsn, me) == Status.UNKNOWN:
                retry_soon(conn, slot(config, name), config.retry_unknown_s)
            done.append(name)
    return done


class Scheduler:
    """One scheduler: its connection to the monitoring database (made again after a failure) and its passes."""

    def __init__(self, config: ProbesConfig, dsn: str, stop: threading.Event) -> None:
        self.config, self.dsn, self.stop = config, dsn, stop
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        self.conn: psycopg.Connection[TupleRow] | None = None

    @property
    def executable(self) -> str:
        """The schedulers that share the probes: those of the same schedule (slots are per schedule)."""
        return f"juno-probe schedule/{self.config.schedule}"

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """The scheduler's connection, for its claims and its heartbeats (at start, and after the database went
        away, it is made again and the schema and slots ensured)."""
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.close()
            self.conn = store.connect(self.dsn)
            store.check_schema(self.conn)
            ensure_slots(self.conn, self.config)
        yield self.conn

    def run_once(self, share: Share = ALL) -> bool:
        """The due probes of this share; a failure drops the connection and is raised (the runner backs off)."""
        try:
            with self.connection() as conn:
                run_due(conn, self.config, self.dsn, self.me, self.stop, share)
        except psycopg.OperationalError:
            self.close()
            raise
        return True

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def loop(config: ProbesConfig, once: bool, stop: threading.Event, beats: bool = True) -> int:
    """Run the schedule until `stop` (or its due probes once). Holds one connection (and one more while a run is
    stored)."""
    if not config.monitor_dsn:
        raise ConfigError("the scheduler needs monitor_dsn (where the runs are stored)")
    probes = enabled(config)
    for name, schedule in probes.items():
        probe_args(name, schedule)  # bad arguments are refused before anything runs
    scheduler = Scheduler(config, config.monitor_dsn, stop)
    logger.info("scheduler %s: %s", scheduler.me,
                ", ".join(f"{n} every {s.interval_s:g} s" for n, s in probes.items()))
    heartbeats = (Heartbeats(scheduler.executable, scheduler.connection, timeout_for(config.tick_s))
                  if beats else None)
    try:
        run_daemon(scheduler.executable, scheduler.run_once, stop=stop, once=once, sleep_time=config.tick_s,
                   heartbeats=heartbeats)
    finally:
        scheduler.close()
    return 0


def main(config: ProbesConfig, once: bool, log_json: bool) -> int:
    configure_logging(log_json, quiet=("urllib3", "rucio", "dogpile", "gfal2"))
    return loop(config, once, stop_on_signals())
