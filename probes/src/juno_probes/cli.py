"""`juno-probe NAME [options]`: run one probe, print its Nagios line, exit with its status (0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN; bad arguments are UNKNOWN too). With a monitoring database (`--monitor-db DSN`,
$JUNO_MONITOR_DSN or `monitor_dsn` of `--config FILE`) the result is stored. `juno-probe schedule --config FILE`
runs every probe on its interval (juno_probes.schedule, on the daemon runner)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from juno_dcs.clikit import log_option
from juno_probes import schedule
from juno_probes.config import ConfigError, ProbesConfig, load
from juno_probes.nagios import Status
from juno_probes.options import PROBES, ProbeArgs, UsageError, probe_command
from juno_probes.probe import execute, save


def _config_of(path: Path | None) -> ProbesConfig:
    return load(path) if path is not None else ProbesConfig()


def _run(name: str, params: dict[str, Any]) -> int:
    args = ProbeArgs(probe=name, **params)
    config = _config_of(args.config)
    started_at, started = datetime.now(UTC), time.monotonic()
    outcome = execute(args, config)
    duration = time.monotonic() - started
    if getattr(args, "json", False):
        click.echo(json.dumps({"status": outcome.result.status.name, "message": outcome.result.message,
                               "perfdata": outcome.result.perfdata, **outcome.details}, indent=1, default=str))
    else:
        click.echo(outcome.result.line(name))
    dsn = args.monitor_db or os.environ.get("JUNO_MONITOR_DSN") or config.monitor_dsn
    if dsn:
        try:
            save(dsn, name, outcome, started_at, duration)
        except Exception as exc:  # storing is a side effect: the probe's status stands
            click.echo(f"juno-probe: could not store the result: {exc.__class__.__name__}: {exc}", err=True)
    return int(outcome.result.status)


@click.group(help=__doc__, no_args_is_help=False)
def cli() -> None:
    """A plain click group, not the kit's: a probe's errors are Nagios' UNKNOWN (3), which main() gives them."""


for _name in PROBES:
    cli.add_command(probe_command(_name, callback=lambda _n=_name, **params: _run(_n, params)))


@cli.command("schedule")
@click.option("--config", type=click.Path(path_type=Path), required=True, help="etc/probes.yaml")
@click.option("--run-once", is_flag=True, help="Run the due probes once, then exit.")
@click.option("--sleep-time", type=click.FloatRange(min=0.1), default=None, help="Override tick_s.")
@log_option
def schedule_command(config: Path, run_once: bool, sleep_time: float | None, log_json: bool) -> int:
    """Run every probe on its interval and store the results (schedulers share the probes by heartbeats)."""
    settings = _config_of(config)
    if sleep_time is not None:
        settings = settings.model_copy(update={"tick_s": sleep_time})
    return schedule.main(settings, once=run_once, log_json=log_json)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: click in non-standalone mode, so that every usage error is UNKNOWN (3)."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="juno-probe",
                        standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "juno-probe"
        click.echo(f"JUNO-PROBE UNKNOWN - {where}: {exc.format_message()}")
        return int(Status.UNKNOWN)
    except (UsageError, ConfigError) as exc:
        click.echo(f"JUNO-PROBE UNKNOWN - {exc}")
        return int(Status.UNKNOWN)
    except click.Abort:
        return int(Status.UNKNOWN)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
