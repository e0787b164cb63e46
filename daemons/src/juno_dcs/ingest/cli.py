"""`juno-dcs ingest run` (the ingestor daemon) and `juno-dcs raw status` (the daily blocks and their copies)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from juno_dcs import logsetup
from juno_dcs.clikit import EXIT_CODES_EPILOG, KitGroup, grid_settings, home_option, log_option, use_rucio_config


@click.group(cls=KitGroup, epilog=EXIT_CODES_EPILOG)
def ingest() -> None:
    """The raw-data ingestor: SPADE's messages from Kafka -> Rucio replicas in daily blocks."""


@ingest.command("run")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The ingestor's YAML configuration (the grid's: <home>/etc/ingest.yaml).")
@click.option("--run-once", is_flag=True, help="Consume what is waiting, close the blocks that are due, exit.")
@click.option("--sleep-time", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Seconds between passes that found nothing (each poll already waits poll_ms for messages).")
@log_option
def run(config_path: Path, run_once: bool, sleep_time: float, log_json: bool) -> None:
    """Run one ingestor instance (several may run at once: they split the topic's partitions)."""
    from juno_dcs.daemon import stop_on_signals
    from juno_dcs.heartbeat import Heartbeats, per_beat_connections, timeout_for
    from juno_dcs.ingest.config import load_config
    from juno_dcs.ingest.daemon import Ingestor

    config = load_config(config_path)
    _logging(log_json)
    if config.rucio.config is not None:
        use_rucio_config(config.rucio.config)
    from rucio.client import Client

    stop = stop_on_signals()
    beats = (Heartbeats("juno-dcs ingest run", per_beat_connections(config.heartbeat_db), timeout_for(sleep_time))
             if config.heartbeat_db else None)
    ingestor = Ingestor(config, lambda: _client(Client, config.rucio.account, stop), stop)
    metrics = ingestor.run(once=run_once, beats=beats, sleep_time=sleep_time)
    if run_once:
        click.echo(json.dumps(metrics.snapshot(), indent=2))


def _client(factory: Any, account: str, stop: threading.Event) -> Any:
    """A Rucio client, once Rucio answers and knows the account (at a grid's start, the ingestor may come up
    before the account is made): waited for with backoff, every attempt logged."""
    delay = 1.0
    while True:
        try:
            return factory(account=account)
        except Exception as exc:  # authentication and connection errors of any kind: wait and try again
            logging.getLogger(__name__).warning("Rucio client for %s: %s; retrying in %.0f s", account,
                                                " ".join(str(exc).split())[:200], delay)
            if stop.wait(delay):
                raise SystemExit(0) from exc
            delay = min(delay * 2, 30.0)


def _when(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat(timespec="seconds") if at is not None else None


def _logging(json_logs: bool) -> None:
    logsetup.configure(json_logs, quiet=("kafka",))


@click.group(cls=KitGroup, epilog=EXIT_CODES_EPILOG)
def raw() -> None:
    """Raw data: the daily blocks, their files and their copies per site."""


@raw.command("status")
@home_option
@click.option("--stream", default=None, help="Only the blocks of this stream (asked of Rucio now).")
@click.option("--day", default=None, help="Only the blocks of this day, YYYYMMDD (asked of Rucio now).")
@click.option("--live", is_flag=True, help="Every block asked of Rucio now, none read from the blocks' summary.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of blocks.")
def status(home: Path | None, stream: str | None, day: str | None, live: bool, as_json: bool) -> None:
    """Per block: state, files, bytes, and per site the replicas and rule states (with why a rule is stuck).

    Over every day, settled blocks (closed, every rule OK for every file) come from the blocks' summary that the
    dashboard's collector keeps, with when they were checked; every other block is asked of Rucio now."""
    from juno_dcs.grid.clients import load_valid_topology, root_client
    from juno_dcs.grid.home import GridHome
    from juno_dcs.ingest.metrics import read_all
    from juno_dcs.ingest.status import StatusRow, raw_status, summary

    settings = grid_settings(home)
    grid_home = GridHome(settings.home)
    state = grid_home.load_state()
    topology = load_valid_topology(settings)
    client = root_client(grid_home, state)
    if stream or day or live:
        rows = [StatusRow(b, None) for b in raw_status(client, topology, stream=stream, day=day)]
    else:
        from juno_dcs.grid.database import grid_url
        from juno_dcs.ingest.summary import read_status, summary_connection

        conn = summary_connection(grid_url(state))
        try:
            rows = read_status(client, conn, topology)
        finally:
            if conn is not None:
                conn.close()
    blocks = [row.view for row in rows]
    if as_json:
        click.echo(json.dumps([{**row.view.model_dump(mode="json"), "checked_at": _when(row.checked_at)}
                               for row in rows], indent=2))
        return
    for row in rows:
        block = row.view
        runs = f" runs {block.run_first}-{block.run_last}" if block.run_first is not None else ""
        checked = f"  (settled; checked {_when(row.checked_at)})" if row.checked_at else ""
        click.echo(f"{block.name}  {block.state}  {block.files} files  {block.bytes} bytes{runs}{checked}")
        for name, site in block.sites.items():
            rules = ",".join(site.rules) or "-"
            click.echo(f"    {name:<12} {site.replicas:>6} replicas  rules {rules}")
            for rule in site.rule_details:
                if rule.reason:
                    click.echo(f"        {rule.rse_expression}: {rule.reason}")
    totals = summary(blocks)
    if totals:
        click.echo("per site: " + "; ".join(f"{s} {r['blocks_ok']}/{r['blocks']} blocks OK, {r['replicas']} replicas"
                                            for s, r in totals.items()))
    for metrics in read_all(grid_home.run / "ingest", live_only=True):
        click.echo(f"ingestor {metrics['instance']}: {metrics['state']}, consumed {metrics['consumed']}, registered "
                   f"{metrics['registered']}, dead-lettered {sum(metrics['dead_lettered'].values())}, "
                   f"lag {metrics['lag_total']}")


@raw.command("summarize")
@home_option
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="Ask Rucio about at most this many blocks (default: every block that is due).")
@click.option("--recheck-s", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              help="A settled block whose rules did not change is asked again after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="What was done, as JSON.")
def summarize(home: Path | None, budget: int | None, recheck_s: float, as_json: bool) -> None:
    """Bring the blocks' summary up to date now (the dashboard's collector does it every `blocks_refresh_s`): the
    blocks that are new, still moving, whose rules changed or that were checked longest ago."""
    from juno_dcs.errors import Unavailable
    from juno_dcs.grid.clients import load_valid_topology, root_client
    from juno_dcs.grid.database import grid_url
    from juno_dcs.grid.home import GridHome
    from juno_dcs.ingest.summary import refresh, summary_connection

    settings = grid_settings(home)
    grid_home = GridHome(settings.home)
    state = grid_home.load_state()
    topology = load_valid_topology(settings)
    conn = summary_connection(grid_url(state))
    if conn is None:
        raise Unavailable("the blocks' summary is not in the grid's database: run `juno-dcs up` (it upgrades the "
                          "dashboard's schema)")
    try:
        result = refresh(root_client(grid_home, state), conn, topology, budget=budget or 10**9, recheck_s=recheck_s)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(result.as_json()))
    else:
        click.echo(f"{result.blocks} blocks: {len(result.refreshed)} asked of Rucio, {result.removed} gone, "
                   f"{result.left} left for the next pass")
