"""`juno-wms serve|agent|...`: the dispatcher's HTTP API, its agent, and a small command-line client.

    juno-wms serve --config etc/wms.yaml --port 23050 [--workers 2]   # HTTP API (uvicorn, 127.0.0.1)
    juno-wms agent --config etc/wms.yaml [--run-once] [--log-json]    # brokerage and leases; many may run
    juno-wms --url URL jobs [--task-id N] [--state S] | job ID | kill ID | retry ID | reassign ID [--site S]

The client commands send the user's token (WLCG Bearer Token Discovery: `eval "$(juno-dcs env --account NAME)"`
sets BEARER_TOKEN_FILE).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from juno_dcs.clikit import KitGroup, log_option

CONFIG = click.Path(dir_okay=False, path_type=Path)


@click.group(cls=KitGroup, help=__doc__)
@click.option("--url", default=lambda: os.environ.get("JUNO_WMS_URL", "http://127.0.0.1:23050"),
              show_default="$JUNO_WMS_URL or http://127.0.0.1:23050",
              help="The dispatcher, for the client commands.")
@click.pass_context
def main(ctx: click.Context, url: str) -> None:
    ctx.obj = url


@main.command()
@click.option("--config", type=CONFIG, required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
@click.option("--workers", type=int, default=2, show_default=True, help="uvicorn worker processes")
@click.option("--reuse-port", is_flag=True, help="Share the port with other instances (SO_REUSEPORT).")
def serve(config: Path, host: str, port: int, workers: int, reuse_port: bool) -> None:
    """Run the HTTP API."""
    from juno_dcs import asgiserve
    from juno_dcs.wms.config import load_config
    from juno_dcs.wms.service import context

    context(load_config(config))  # a bad file fails here, with its reason, not in every worker
    os.environ["JUNO_WMS_CONFIG"] = str(config.resolve())
    asgiserve.serve("juno_dcs.wms.asgi:app", host, port, workers, reuse_port, log_level="warning", backlog=2048)


@main.command()
@click.option("--config", type=CONFIG, required=True)
@click.option("--run-once", is_flag=True, help="One cycle, print what it did as JSON, exit.")
@click.option("--bulk", type=click.IntRange(min=1), default=None, help="Override agent_bulk.")
@click.option("--sleep-time", type=click.FloatRange(min=0.0), default=None, help="Override agent_sleep_s.")
@log_option
def agent(config: Path, run_once: bool, bulk: int | None, sleep_time: float | None, log_json: bool) -> None:
    """Run brokerage and lease expiry (any number of agents may run: they share the jobs by heartbeats)."""
    from juno_dcs import daemon
    from juno_dcs.heartbeat import Heartbeats, Share, timeout_for
    from juno_dcs.wms import db
    from juno_dcs.wms.agent import Agent, Cycle
    from juno_dcs.wms.brokerage import ReplicaLocator, RucioReplicaLocator
    from juno_dcs.wms.config import load_config
    from juno_dcs.wms.service import context

    daemon.configure_logging(log_json)
    cfg = load_config(config)
    ctx = context(cfg)
    locator: ReplicaLocator | None = RucioReplicaLocator(cfg.rucio_config) if cfg.rucio else None
    sleep = sleep_time if sleep_time is not None else cfg.agent_sleep_s
    stop = daemon.stop_on_signals()
    pool = db.open_pool(cfg.database_url, size=2)  # the heartbeats take a connection of the pool between passes
    worker = Agent(pool, ctx, locator, bulk=bulk or cfg.agent_bulk)
    last = Cycle()

    def one_pass(share: Share) -> bool:
        nonlocal last
        last = worker.run_once(share)
        return not last.full

    try:
        daemon.run_daemon("juno-wms agent", one_pass, stop=stop, once=run_once, sleep_time=sleep,
                          heartbeats=Heartbeats("juno-wms agent", pool.connection, timeout_for(sleep)))
    finally:
        pool.close()
    if run_once:
        click.echo(json.dumps(last.as_json()))


def _client(url: str) -> Any:
    from juno_dcs.wms.client import WmsClient
    from juno_dcs.wms.credentials import user_token

    return WmsClient(url, token=user_token())


@main.command()
@click.option("--task-id", type=int)
@click.option("--state")
@click.option("--site")
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_obj
def jobs(url: str, task_id: int | None, state: str | None, site: str | None, limit: int) -> None:
    """List jobs."""
    for j in _client(url).jobs(task_id=task_id, state=state, site=site, limit=limit):
        click.echo(f"{j['job_id']:>8} {j['state']:<10} {j['attempt']:>2} {j['site'] or '-':<13} {j['key']}")


def _one(name: str, doc: str) -> None:
    @main.command(name, help=doc)
    @click.argument("job_id", type=int)
    @click.pass_obj
    def command(url: str, job_id: int) -> None:
        client = _client(url)
        out: Any = {"job": client.job, "kill": client.kill_job, "retry": client.retry_job}[name](job_id)
        click.echo(json.dumps(out, indent=2))


_one("job", "Show one job.")
_one("kill", "Kill one job.")
_one("retry", "Retry one job.")


@main.command()
@click.argument("job_id", type=int)
@click.option("--site")
@click.pass_obj
def reassign(url: str, job_id: int, site: str | None) -> None:
    """Reassign one job (to SITE, or back to brokerage)."""
    click.echo(json.dumps(_client(url).reassign_job(job_id, site), indent=2))


if __name__ == "__main__":
    sys.exit(main())
