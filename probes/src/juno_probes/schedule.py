"""`juno-probe schedule --config FILE [--run-once]`: every enabled probe on its own interval, each run stored.

Slots are claimed in the monitoring database (`probes.schedule_slot`): a scheduler runs a probe only after
`UPDATE ... SET next_run = now() + interval WHERE slot = %s AND next_run <= now() RETURNING`, one atomic
statement, so two schedulers at once never run the same probe twice for one slot. A probe that raises is
stored as UNKNOWN with the reason; SIGTERM stops the loop between probes.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime
from types import FrameType

import psycopg
from psycopg.rows import TupleRow

from juno_probes import store
from juno_probes.config import ConfigError, ProbeSchedule, ProbesConfig
from juno_probes.nagios import Result, Status

logger = logging.getLogger(__name__)


def probe_args(name: str, schedule: ProbeSchedule) -> argparse.Namespace:
    from juno_probes.cli import UsageError, build_parser

    try:
        return build_parser().parse_args([name, *schedule.args])
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
    from juno_probes.cli import Outcome, execute, save

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
            stop: threading.Event) -> list[str]:
    """Every due probe once, in the configuration's order; the names of those that ran."""
    done = []
    for name, schedule in enabled(config).items():
        if stop.is_set():
            break
        if claim(conn, slot(config, name), schedule.interval_s, me):
            if run_one(name, schedule, config, dsn, me) == Status.UNKNOWN:
                retry_soon(conn, slot(config, name), config.retry_unknown_s)
            done.append(name)
    return done


def loop(config: ProbesConfig, once: bool, stop: threading.Event) -> int:
    if not config.monitor_dsn:
        raise ConfigError("the scheduler needs monitor_dsn (where the runs are stored)")
    probes = enabled(config)
    for name, schedule in probes.items():
        probe_args(name, schedule)  # bad arguments are refused before anything runs
    me = f"{socket.gethostname()}:{os.getpid()}"
    logger.info("scheduler %s: %s", me, ", ".join(f"{n} every {s.interval_s:g} s" for n, s in probes.items()))
    conn: psycopg.Connection[TupleRow] | None = None
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.closed or conn.broken:  # at start, and after the database went away
                    if conn is not None:
                        conn.close()
                    conn = store.connect(config.monitor_dsn)
                    store.check_schema(conn)
                    ensure_slots(conn, config)
                run_due(conn, config, config.monitor_dsn, me, stop)
            except psycopg.OperationalError as exc:
                if once:
                    raise
                logger.warning("monitoring database: %s; connecting again in %g s",
                               " ".join(str(exc).split())[:200], config.tick_s)
            if once:
                break
            stop.wait(config.tick_s)
    finally:
        if conn is not None:
            conn.close()
    return 0


def main(args: argparse.Namespace, config: ProbesConfig) -> int:
    from juno_dcs.logsetup import configure  # the daemons' shared logging set-up (juno-dcs is in the venv)

    configure(args.log_json, quiet=("urllib3", "rucio", "dogpile", "gfal2"))
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping after the current probe", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        return loop(config, args.run_once, stop)
    except ConfigError as exc:
        print(f"juno-probe schedule: {exc}")
        return 3
