"""`juno-dashboard serve|collect`: the grid's dashboard and its collector.

    juno-dashboard serve --config etc/dashboard.yaml --port 27060 [--no-collect]   # page + JSON API (+ collector)
    juno-dashboard collect --config etc/dashboard.yaml [--run-once] [--sleep-time S] [--log-json]
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from juno_dcs.clikit import KitGroup, log_option
from juno_dcs.errors import ConfigError

if TYPE_CHECKING:
    from juno_dcs.dashboard.service import Context

CONFIG = click.Path(dir_okay=False, path_type=Path)


def _logging(log_json: bool) -> None:
    from juno_dcs.daemon import configure_logging

    configure_logging(log_json, quiet=("urllib3", "uvicorn.access"))


@click.group(cls=KitGroup, help=__doc__)
@log_option
@click.pass_context
def main(ctx: click.Context, log_json: bool) -> None:
    ctx.obj = log_json


def _setup(path: Path, sleep_s: float | None = None) -> Context:
    from juno_dcs.dashboard.config import load_config
    from juno_dcs.dashboard.service import context
    from juno_dcs.topology import TopologyError

    config = load_config(path)
    if sleep_s is not None:
        if sleep_s < 1:
            raise ConfigError(f"--sleep-time must be at least 1 second, not {sleep_s}")
        config = config.model_copy(update={"sample_s": sleep_s})
    try:
        return context(config)
    except TopologyError as exc:
        raise ConfigError(f"{config.topology}: {exc}") from exc


@main.command()
@click.option("--config", type=CONFIG, required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
@click.option("--no-collect", is_flag=True, help="Do not run the collector in this process.")
@log_option
@click.pass_obj
def serve(log_json_group: bool, config: Path, host: str, port: int, no_collect: bool, log_json: bool) -> None:
    """Serve the page and the JSON API (and run the collector in a thread)."""
    import uvicorn

    from juno_dcs.dashboard.collector import Collector
    from juno_dcs.dashboard.routes import create_app

    _logging(log_json or log_json_group)
    ctx = _setup(config)
    collector = None
    if ctx.config.collect and not no_collect:
        collector = ctx.collector = Collector(ctx.config, ctx.rucio)
        threading.Thread(target=collector.run, name="collector", daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host=host, port=port, log_level="warning"))
    try:
        server.run()  # stops on SIGTERM and SIGINT (uvicorn's handlers)
    finally:
        if collector is not None:
            collector.stop.set()


@main.command()
@click.option("--config", type=CONFIG, required=True)
@click.option("--run-once", is_flag=True, help="One cycle, print what it wrote, exit.")
@click.option("--sleep-time", type=float, default=None, help="Override sample_s.")
@log_option
@click.pass_obj
def collect(log_json_group: bool, config: Path, run_once: bool, sleep_time: float | None, log_json: bool) -> None:
    """Sample the time series into schema `dashboard` (collectors of one period share the sources)."""
    from juno_dcs.daemon import stop_on_signals
    from juno_dcs.dashboard.collector import Collector

    _logging(log_json or log_json_group)
    ctx = _setup(config, sleep_time)
    collector = Collector(ctx.config, ctx.rucio)
    stop_on_signals(collector.stop)
    cycle = collector.run(once=run_once)
    if run_once:
        click.echo(json.dumps(cycle.as_json()))
        if cycle.errors:
            sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
