"""The probes' command-line options, declared once (click) for the command line (juno_probes.cli) and for the
scheduler, which parses each probe's `args` from etc/probes.yaml with them (juno_probes.schedule).

`parse(name, args) -> ProbeArgs` raises `UsageError` with click's message; the command line reports it as UNKNOWN
(exit 3), never as click's exit 2 (CRITICAL to Nagios).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click

from juno_probes import programs, services, stuck, tpc

ProbeArgs = SimpleNamespace  # the parsed options of one probe, by their Python names, and `probe`


class UsageError(Exception):
    """A bad command line or a bad `args` of a scheduled probe."""


class _Checked(click.ParamType[Any, Any]):
    """A click type from a function that raises ValueError with the reason."""

    def __init__(self, name: str, check: Callable[[str], Any]) -> None:
        self.name, self.check = name, check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # a default, already converted
        try:
            return self.check(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _csv(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ValueError("expected a comma-separated list")
    return items


def _modes(value: str) -> list[str]:
    items = _csv(value)
    if bad := [m for m in items if m not in tpc.MODES]:
        raise ValueError(f"unknown mode {', '.join(bad)} (known: {', '.join(tpc.MODES)})")
    return items


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(f"{value} is not a fraction between 0 and 1")
    return number


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError(f"{value} is not a positive number")
    return number


def _squid(value: str) -> tuple[str, str]:
    site, sep, url = value.partition("=")
    if not sep or not site or not url.startswith("http"):
        raise ValueError(f"{value!r}: expected SITE=http://host:port")
    return site, url


CSV, MODES = _Checked("LIST", _csv), _Checked("MODES", _modes)
FRACTION, POSITIVE = _Checked("FRACTION", _fraction), _Checked("SECONDS", _positive)
SQUID = _Checked("SITE=URL", _squid)
PATH = click.Path(path_type=Path)
RUCIO = click.Option(["--rucio-config"], help="Rucio client config (default $RUCIO_CONFIG).")


def _opt(name: str, **kw: Any) -> click.Option:
    return click.Option([name], show_default="default" in kw and not callable(kw["default"]), **kw)


def _probe_options() -> dict[str, tuple[str, list[click.Option]]]:
    d, q = services.IngestThresholds(), services.QueueThresholds()
    return {
        "rucio": ("The Rucio server answers and accepts a login.", [
            RUCIO, _opt("--warning", type=POSITIVE, default=1.0, help="Ping seconds for WARNING."),
            _opt("--critical", type=POSITIVE, default=5.0, help="Ping seconds for CRITICAL.")]),
        "tpc": ("HTTP third-party copies between every ordered pair of DISK RSEs in each mode.", [
            RUCIO, _opt("--rses", type=CSV, help="Only these RSEs (comma-separated; default every DISK RSE)."),
            _opt("--modes", type=MODES, default=list(tpc.MODES), help="Comma-separated: pull,push,streamed."),
            _opt("--timeout", type=int, default=60, help="Seconds per copy."),
            _opt("--parallel", type=int, default=4, help="Copies at once."),
            _opt("--size", type=int, default=1 << 20, help="Bytes of the test file."),
            _opt("--warning", type=FRACTION, default=0.01, help="Failed fraction for WARNING."),
            _opt("--critical", type=FRACTION, default=0.1, help="Failed fraction for CRITICAL.")]),
        "stuck-rules": ("STUCK and long-REPLICATING rules, with the reasons.", [
            RUCIO, _opt("--fts-url", help="The transfer service (to read the jobs of the rules' requests)."),
            _opt("--older-than", type=float, default=3600.0, help="REPLICATING rules older than this (s)."),
            _opt("--warning", type=int, default=1, help="Rules for WARNING."),
            _opt("--critical", type=int, default=10, help="Rules for CRITICAL."),
            _opt("--max-rules", type=int, default=100, help="Examine at most this many rules."),
            _opt("--unsubmitted-after", type=POSITIVE, default=stuck.UNSUBMITTED_AFTER_S,
                 help="While the transfer service is idle, younger REPLICATING rules whose requests waited "
                      "unsubmitted this long (s) are reported too (not_submitted)."),
            click.Option(["--json"], is_flag=True, help="Print the rules with their reasons as JSON.")]),
        "ingest-lag": ("The ingestor's lag and latency, from its metrics files.", [
            _opt("--metrics-dir", type=PATH, help="The ingestor's metrics_dir."),
            _opt("--lag-warning", type=int, default=d.lag_warning),
            _opt("--lag-critical", type=int, default=d.lag_critical),
            _opt("--latency-warning", type=POSITIVE, default=d.latency_warning_s, help="p99 seconds."),
            _opt("--latency-critical", type=POSITIVE, default=d.latency_critical_s, help="p99 seconds."),
            _opt("--stale", type=POSITIVE, default=d.stale_s, help="Seconds without an update for WARNING.")]),
        "transfer-queues": ("The transfer service's links: queued, active, failure rate.", [
            _opt("--fts-url", help="The transfer service."),
            _opt("--window", type=POSITIVE, default=q.window_s, help="Seconds of history."),
            _opt("--failure-warning", type=FRACTION, default=q.failure_warning),
            _opt("--failure-critical", type=FRACTION, default=q.failure_critical),
            _opt("--queued-warning", type=int, default=q.queued_warning),
            _opt("--queued-critical", type=int, default=q.queued_critical)]),
        "conditions": ("The conditions service and each Squid answer.", [
            _opt("--conditions-url", help="The conditions service."),
            click.Option(["--squid"], type=SQUID, multiple=True, help="SITE=URL (repeatable)."),
            _opt("--path", default="/health", help="The URL path asked of each."),
            _opt("--warning", type=POSITIVE, default=1.0, help="Seconds for WARNING."),
            _opt("--critical", type=POSITIVE, default=5.0, help="Seconds for CRITICAL.")]),
        "dispatcher": ("The dispatcher's queues: activated jobs without pilots, silent pilots.", [
            _opt("--dispatcher-url", help="The dispatcher (default $JUNO_WMS_URL)."),
            _opt("--min-jobs", type=int, default=1, help="Jobs in a queue without pilots for a warning.")]),
        "programs": ("Every program of the grid runs and every Rucio daemon's heartbeat is fresh.", [
            click.Option(["--rucio-config"], help="Rucio client config of root (default $RUCIO_CONFIG)."),
            _opt("--stale", type=POSITIVE, default=programs.STALE_S,
                 help="Seconds since a daemon's newest heartbeat for CRITICAL.")]),
    }


PROBES = tuple(_probe_options())


def probe_command(name: str, callback: Callable[..., Any] | None = None) -> click.Command:
    """The click command of one probe (with --config and --monitor-db, which every probe takes)."""
    help_text, options = _probe_options()[name]
    common = [click.Option(["--config"], type=PATH, help="etc/probes.yaml: service URLs and the monitoring database."),
              click.Option(["--monitor-db"], help="Store the result there (default $JUNO_MONITOR_DSN).")]
    return click.Command(name, params=[*common, *options], callback=callback, help=help_text, short_help=help_text)


def parse(name: str, args: Sequence[str]) -> ProbeArgs:
    """A probe's options from words (a command line's, or a scheduled probe's `args`)."""
    if name not in PROBES:
        raise UsageError(f"juno-probe: no such probe {name!r} (known: {', '.join(PROBES)})")
    command = probe_command(name)
    try:
        with command.make_context(f"juno-probe {name}", list(args)) as ctx:
            return ProbeArgs(probe=name, **ctx.params)
    except click.UsageError as exc:
        raise UsageError(f"juno-probe {name}: {exc.format_message()}") from exc
