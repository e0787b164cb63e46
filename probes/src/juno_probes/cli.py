"""`juno-probe NAME [options]`: run one probe, print its Nagios line, exit with its status (0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN; bad arguments are UNKNOWN too). With a monitoring database (`--monitor-db DSN`,
$JUNO_MONITOR_DSN or `monitor_dsn` of `--config FILE`) the result is stored. `juno-probe schedule --config FILE`
runs every probe on its interval."""

from __future__ import annotations

import argparse
import configparser
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from juno_probes import programs, rucio_server, services, store, stuck, tpc
from juno_probes.config import ConfigError, ProbesConfig, load
from juno_probes.nagios import Result, Status

logger = logging.getLogger(__name__)


class UsageError(Exception):
    """A bad command line: reported as UNKNOWN (exit 3), never as argparse's exit 2 (CRITICAL to Nagios)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


@dataclass(frozen=True)
class Outcome:
    result: Result
    details: dict[str, Any] = field(default_factory=dict)
    attempts: list[store.TpcAttempt] = field(default_factory=list)


def _rucio_client_settings(config: str | None) -> tuple[str, str, str]:
    path = config or os.environ.get("RUCIO_CONFIG")
    if not path:
        raise ValueError("no Rucio client configuration: pass --rucio-config or eval \"$(juno-dcs env)\" first")
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path):
        raise ValueError(f"{path}: cannot read the Rucio client configuration")
    try:
        section = parser["client"]
        return section["rucio_host"], section["account"], section["password"]
    except KeyError as exc:
        raise ValueError(f"{path}: [client] lacks {exc}") from exc


def _rucio_client(path: str | None) -> Any:
    """A Rucio client for the config file `path` (else $RUCIO_CONFIG), which must exist."""
    _rucio_client_settings(path)  # a clear error when there is no usable file
    from rucio.client import Client
    from rucio.common.config import clean_cached_config

    if path and os.environ.get("RUCIO_CONFIG") != path:
        os.environ["RUCIO_CONFIG"] = path
        clean_cached_config()  # Rucio reads its config once per process
    return Client()


def _csv(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _modes(value: str) -> list[str]:
    items = _csv(value)
    if bad := [m for m in items if m not in tpc.MODES]:
        raise argparse.ArgumentTypeError(f"unknown mode {', '.join(bad)} (known: {', '.join(tpc.MODES)})")
    return items


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not a fraction between 0 and 1")
    return number


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def _squid(value: str) -> tuple[str, str]:
    site, sep, url = value.partition("=")
    if not sep or not site or not url.startswith("http"):
        raise argparse.ArgumentTypeError(f"{value!r}: expected SITE=http://host:port")
    return site, url


def build_parser() -> _Parser:
    parser = _Parser(prog="juno-probe", description=__doc__)
    sub = parser.add_subparsers(dest="probe", required=True, parser_class=_Parser)

    def probe(name: str, help_text: str) -> _Parser:
        p: _Parser = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", type=Path, help="etc/probes.yaml: service URLs and the monitoring database")
        p.add_argument("--monitor-db", help="store the result there (default $JUNO_MONITOR_DSN)")
        return p

    p = probe("rucio", "the Rucio server answers and accepts a login")
    p.add_argument("--rucio-config", help="Rucio client config (default $RUCIO_CONFIG)")
    p.add_argument("--warning", type=_positive, default=1.0, help="ping seconds for WARNING")
    p.add_argument("--critical", type=_positive, default=5.0, help="ping seconds for CRITICAL")

    p = probe("tpc", "HTTP third-party copies between every ordered pair of DISK RSEs in each mode")
    p.add_argument("--rucio-config", help="Rucio client config (default $RUCIO_CONFIG)")
    p.add_argument("--rses", type=_csv, help="only these RSEs (comma-separated; default every DISK RSE)")
    p.add_argument("--modes", type=_modes, default=list(tpc.MODES), help="comma-separated: pull,push,streamed")
    p.add_argument("--timeout", type=int, default=60, help="seconds per copy")
    p.add_argument("--parallel", type=int, default=4, help="copies at once")
    p.add_argument("--size", type=int, default=1 << 20, help="bytes of the test file")
    p.add_argument("--warning", type=_fraction, default=0.01, help="failed fraction for WARNING")
    p.add_argument("--critical", type=_fraction, default=0.1, help="failed fraction for CRITICAL")

    p = probe("stuck-rules", "STUCK and long-REPLICATING rules, with the reasons")
    p.add_argument("--rucio-config", help="Rucio client config (default $RUCIO_CONFIG)")
    p.add_argument("--fts-url", help="the transfer service (to read the jobs of the rules' requests)")
    p.add_argument("--older-than", type=float, default=3600.0, help="REPLICATING rules older than this (s)")
    p.add_argument("--warning", type=int, default=1, help="rules for WARNING")
    p.add_argument("--critical", type=int, default=10, help="rules for CRITICAL")
    p.add_argument("--max-rules", type=int, default=100, help="examine at most this many rules")
    p.add_argument("--unsubmitted-after", type=_positive, default=stuck.UNSUBMITTED_AFTER_S,
                   help="while the transfer service is idle, younger REPLICATING rules whose requests waited "
                        "unsubmitted this long (s) are reported too (not_submitted)")
    p.add_argument("--json", action="store_true", help="print the rules with their reasons as JSON")

    p = probe("ingest-lag", "the ingestor's lag and latency, from its metrics files")
    p.add_argument("--metrics-dir", type=Path, help="the ingestor's metrics_dir")
    d = services.IngestThresholds()
    p.add_argument("--lag-warning", type=int, default=d.lag_warning)
    p.add_argument("--lag-critical", type=int, default=d.lag_critical)
    p.add_argument("--latency-warning", type=_positive, default=d.latency_warning_s, help="p99 seconds")
    p.add_argument("--latency-critical", type=_positive, default=d.latency_critical_s, help="p99 seconds")
    p.add_argument("--stale", type=_positive, default=d.stale_s, help="seconds without an update for WARNING")

    p = probe("transfer-queues", "the transfer service's links: queued, active, failure rate")
    p.add_argument("--fts-url", help="the transfer service")
    q = services.QueueThresholds()
    p.add_argument("--window", type=_positive, default=q.window_s, help="seconds of history")
    p.add_argument("--failure-warning", type=_fraction, default=q.failure_warning)
    p.add_argument("--failure-critical", type=_fraction, default=q.failure_critical)
    p.add_argument("--queued-warning", type=int, default=q.queued_warning)
    p.add_argument("--queued-critical", type=int, default=q.queued_critical)

    p = probe("conditions", "the conditions service and each Squid answer")
    p.add_argument("--conditions-url", help="the conditions service")
    p.add_argument("--squid", type=_squid, action="append", default=[], help="SITE=URL (repeatable)")
    p.add_argument("--path", default="/health", help="the URL path asked of each")
    p.add_argument("--warning", type=_positive, default=1.0, help="seconds for WARNING")
    p.add_argument("--critical", type=_positive, default=5.0, help="seconds for CRITICAL")

    p = probe("dispatcher", "the dispatcher's queues: activated jobs without pilots, silent pilots")
    p.add_argument("--dispatcher-url", help="the dispatcher (default $JUNO_WMS_URL)")
    p.add_argument("--min-jobs", type=int, default=1, help="jobs in a queue without pilots for a warning")

    p = probe("programs", "every program of the grid runs and every Rucio daemon's heartbeat is fresh")
    p.add_argument("--rucio-config", help="Rucio client config of root (default $RUCIO_CONFIG)")
    p.add_argument("--stale", type=_positive, default=programs.STALE_S,
                   help="seconds since a daemon's newest heartbeat for CRITICAL")

    s = sub.add_parser("schedule", help="run every probe on its interval and store the results")
    s.add_argument("--config", type=Path, required=True, help="etc/probes.yaml")
    s.add_argument("--run-once", action="store_true", help="run the due probes once, then exit")
    s.add_argument("--log-json", action="store_true", help="log as JSON lines")
    return parser


def _need(value: Any, what: str) -> Any:
    if value in (None, "", {}):
        raise ValueError(f"no {what} (give the option or --config)")
    return value


def run_probe(args: argparse.Namespace, config: ProbesConfig) -> Outcome:
    """Run the probe that `args` names; ValueError for a missing setting."""
    name = args.probe
    rucio_cfg = getattr(args, "rucio_config", None) or (str(config.rucio_config) if config.rucio_config else None)
    if name == "rucio":
        url, account, password = _rucio_client_settings(rucio_cfg)
        return Outcome(rucio_server.check(url, account, password, args.warning, args.critical))
    if name == "tpc":
        result, attempts = tpc.check(_rucio_client(rucio_cfg), args.rses, args.modes, args.timeout, args.parallel,
                                     args.warning, args.critical, args.size)
        return Outcome(result, dict(tpc.details(attempts)), attempts)
    if name == "stuck-rules":
        result, rules = stuck.check(_rucio_client(rucio_cfg), args.fts_url or config.fts_url, args.older_than,
                                    args.warning, args.critical, args.max_rules, args.unsubmitted_after)
        return Outcome(result, {"older_than_s": args.older_than, "rules": rules})
    if name == "ingest-lag":
        limits = services.IngestThresholds(args.lag_warning, args.lag_critical, args.latency_warning,
                                           args.latency_critical, args.stale)
        return Outcome(services.check_ingest(_need(args.metrics_dir or config.ingest_metrics_dir,
                                                   "ingestor metrics directory (--metrics-dir)"), limits))
    if name == "transfer-queues":
        limits_q = services.QueueThresholds(args.failure_warning, args.failure_critical, 5, args.queued_warning,
                                            args.queued_critical, args.window)
        return Outcome(services.check_queues(_need(args.fts_url or config.fts_url, "transfer service (--fts-url)"),
                                             limits_q))
    if name == "conditions":
        squids = dict(args.squid) or config.squids
        service = args.conditions_url or config.conditions_url
        _need(service or squids, "conditions service or Squid (--conditions-url, --squid)")
        return Outcome(services.check_conditions(service, squids, args.path, args.warning, args.critical))
    if name == "dispatcher":
        wms = args.dispatcher_url or config.dispatcher_url or os.environ.get("JUNO_WMS_URL")
        return Outcome(services.check_dispatcher(_need(wms, "dispatcher (--dispatcher-url)"), args.min_jobs))
    if name == "programs":
        found = os.environ.get(programs.SUPERVISOR_URL_ENV) or programs.read_url_file(config.supervisor_url_file)
        supervisor = str(_need(found, f"supervisor (supervisor_url_file in --config, or "
                                      f"${programs.SUPERVISOR_URL_ENV})"))
        result, details = programs.check(supervisor, _rucio_client(rucio_cfg), args.stale)
        return Outcome(result, details)
    raise ValueError(f"unknown probe {name}")


def execute(args: argparse.Namespace, config: ProbesConfig) -> Outcome:
    """`run_probe`, with any failure of the probe itself turned into UNKNOWN with the reason."""
    try:
        return run_probe(args, config)
    except ValueError as exc:
        return Outcome(Result(Status.UNKNOWN, str(exc)))
    except Exception as exc:  # a probe that breaks is UNKNOWN, as Nagios expects, never a traceback
        logger.exception("probe %s raised", args.probe)
        return Outcome(Result(Status.UNKNOWN, f"the probe raised {exc.__class__.__name__}: {exc}"))


def save(dsn: str, probe: str, outcome: Outcome, started_at: datetime, duration_s: float) -> int:
    with store.connect(dsn) as conn:
        store.check_schema(conn)
        run_id = store.record_run(conn, probe, outcome.result, started_at, duration_s, outcome.details)
        store.record_tpc(conn, run_id, outcome.attempts)
        return run_id


def _config_of(path: Path | None) -> ProbesConfig:
    return load(path) if path is not None else ProbesConfig()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        config = _config_of(args.config)
    except (UsageError, ConfigError) as exc:
        print(f"JUNO-PROBE UNKNOWN - {exc}")
        return int(Status.UNKNOWN)
    if args.probe == "schedule":
        from juno_probes import schedule

        return schedule.main(args, config)
    started_at, started = datetime.now(UTC), time.monotonic()
    outcome = execute(args, config)
    duration = time.monotonic() - started
    if getattr(args, "json", False):
        print(json.dumps({"status": outcome.result.status.name, "message": outcome.result.message,
                          "perfdata": outcome.result.perfdata, **outcome.details}, indent=1, default=str))
    else:
        print(outcome.result.line(args.probe))
    dsn = args.monitor_db or os.environ.get("JUNO_MONITOR_DSN") or config.monitor_dsn
    if dsn:
        try:
            save(dsn, args.probe, outcome, started_at, duration)
        except Exception as exc:  # storing is a side effect: the probe's status stands
            print(f"juno-probe: could not store the result: {exc.__class__.__name__}: {exc}", file=sys.stderr)
    return int(outcome.result.status)


if __name__ == "__main__":
    sys.exit(main())
