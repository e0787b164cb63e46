"""`juno-prod`: the production manager.

    juno-prod [--config FILE] submit STEERING.yaml        store the production, make its DIDs and detsim jobs
    juno-prod [--config FILE] run [--run-once] [--sleep-time S] [--log-json]   the daemon (later steps, closing)
    juno-prod [--config FILE] status [ID|NAME] [--json]   per step: jobs by state, files, bytes, failures
    juno-prod [--config FILE] extend ID --jobs N          N more detsim jobs (and so more of every step)
    juno-prod [--config FILE] pause ID | resume ID        stop / restart creating jobs
    juno-prod [--config FILE] kill ID                     kill the production's tasks at the dispatcher

The configuration is --config FILE or $JUNO_PROD_CONFIG (juno_dcs.prodsys.config).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from juno_dcs import logsetup
from juno_dcs.clikit import EXIT_CODES_EPILOG, KitGroup, log_option, use_rucio_config
from juno_dcs.errors import ServiceError
from juno_dcs.prodsys.config import ProdConfig, load_config

logger = logging.getLogger(__name__)


@click.group(cls=KitGroup, name="juno-prod", epilog=EXIT_CODES_EPILOG)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The production manager's YAML configuration (default $JUNO_PROD_CONFIG).")
@click.option("-v", "--verbose", is_flag=True, help="Log what is being done.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """The production manager: MC productions as dispatcher tasks, one per step, driven by Rucio's files."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = config_path


@contextmanager
def _manager(ctx: click.Context, as_daemon: bool = False) -> Iterator[Any]:
    """The Manager on the configuration's database, dispatcher and Rucio; the database closed after. The
    database's and Rucio's own errors become ServiceErrors ("the database: ...", "Rucio: ...")."""
    import psycopg
    from rucio.common.exception import RucioException

    try:
        with _connected_manager(ctx, as_daemon) as manager:
            yield manager
    except psycopg.OperationalError as exc:
        raise ServiceError(f"the database: {' '.join(str(exc).split())}") from exc
    except RucioException as exc:
        raise ServiceError(f"Rucio: {' '.join(str(exc).split())}") from exc


def _dispatcher_token(config: ProdConfig, as_daemon: bool) -> Any:
    """The commands send the user's token (BEARER_TOKEN_FILE); the daemon its client's (`auth`), when set."""
    from juno_dcs.wms.credentials import client_token, user_token

    if as_daemon and config.auth is not None:
        return client_token(config.auth, config.dispatcher_audience)
    return user_token()


@contextmanager
def _connected_manager(ctx: click.Context, as_daemon: bool) -> Iterator[Any]:
    config = load_config(ctx.obj)
    from juno_dcs.placement.loader import load_policies
    from juno_dcs.prodsys.catalog import RucioCatalog
    from juno_dcs.prodsys.db import Store
    from juno_dcs.prodsys.logic import Manager
    from juno_dcs.topology import load_topology
    from juno_dcs.wms.client import WmsClient

    topology = load_topology(config.topology)
    policies = load_policies(config.policies_dir)
    store = Store.connect(config.database_url)  # the cheapest to fail first
    try:
        catalog = RucioCatalog(_rucio(config), policies, topology)
        wms = WmsClient(config.dispatcher_url, timeout=config.dispatcher_timeout,
                        token=_dispatcher_token(config, as_daemon))
        yield Manager(store=store, wms=wms,
                      catalog=catalog, topology=topology, owner=config.owner)
    finally:
        store.close()


def _wait_for_rucio(config: ProdConfig, every_s: float = 5.0) -> None:
    """The daemon waits for its Rucio account rather than exit: on a new grid `juno-dcs up` creates the account's
    identity only after it has started the programs."""
    while True:
        try:
            _rucio(config).whoami()
            return
        except Exception as exc:  # the server not up yet, or the account not yet made: both pass
            logger.warning("Rucio not ready for %s (%s); trying again in %.0f s", config.rucio.account,
                           " ".join(str(exc).split())[:200], every_s)
            time.sleep(every_s)


def _rucio(config: ProdConfig) -> Any:
    if config.rucio.config is not None:
        use_rucio_config(config.rucio.config)
    from rucio.client import Client

    return Client(account=config.rucio.account)


@main.command()
@click.argument("steering_file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def submit(ctx: click.Context, steering_file: Path) -> None:
    """Store the production of STEERING_FILE, make its container and datasets and its detsim jobs."""
    from juno_dcs.prodsys.steering import load_steering

    steering = load_steering(steering_file)
    with _manager(ctx) as manager:
        pid, new = manager.submit(steering)
        counts = manager.store.job_counts(pid)
    what = "submitted" if new else "already submitted; completed"
    click.echo(f"production {pid} {steering.name} {what}: {counts.get('detsim', 0)} detsim jobs")


@main.command()
@click.option("--run-once", is_flag=True, help="One pass over the active productions, then exit.")
@click.option("--sleep-time", type=click.FloatRange(min=0.1), default=None, help="Override the config's sleep.")
@log_option
@click.pass_context
def run(ctx: click.Context, run_once: bool, sleep_time: float | None, log_json: bool) -> None:
    """The daemon: later steps' jobs as their inputs appear in Rucio, closing complete steps (instances share the
    productions by heartbeats)."""
    from juno_dcs import daemon as runner
    from juno_dcs.prodsys import daemon

    if log_json:
        _json_logs()
    config = load_config(ctx.obj)
    sleep = sleep_time if sleep_time is not None else config.sleep
    if config.events is not None:
        config.events.password()  # an unreadable password file is the command's error (exit 2), not a loop's
    if not run_once:
        _wait_for_rucio(config)  # before the handlers: until then SIGTERM ends the program at once
    stop = runner.stop_on_signals()
    silent = config.reconcile if config.events is not None else sleep  # the longest sleep between two beats
    with _manager(ctx, as_daemon=True) as manager:
        daemon.run(manager, stop, sleep, once=run_once, beats=daemon.heartbeats(manager.store, silent),
                   events=config.events, reconcile=config.reconcile)


@main.command()
@click.argument("production", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, production: str | None, as_json: bool) -> None:
    """Per step: the dispatcher's jobs by state, files and bytes in Rucio, failures with their reasons.
    Without PRODUCTION (id or name): every production."""
    with _manager(ctx) as manager:
        keys = [production] if production else [str(r["production_id"]) for r in manager.store.productions()]
        reports = [manager.status(k) for k in keys]
    if as_json:
        click.echo(json.dumps(reports[0] if production else reports, indent=2, default=str))
        return
    for report in reports:
        click.echo(f"production {report['production_id']} {report['name']} ({report['campaign']}): "
                   f"{report['state']}, {report['jobs']} jobs, final rules {len(report['final_rules'])}")
        for s in report["steps"]:
            states = ", ".join(f"{k} {v}" for k, v in sorted(s["jobs_by_state"].items())) or "no jobs"
            closed = " closed" if s["closed"] else ""
            click.echo(f"  {s['step']:8} task {s['task_id']}: {s['jobs_created']} created ({states}); "
                       f"{s['files']} files, {s['bytes']} bytes{closed}")
            for g in s["errors"]:
                e = g["example"]
                click.echo(f"    failed {g['count']:>5} x {g['error_class']}: {g['message']} "
                           f"[e.g. job {e['job_id']} {e['key']} attempt {e['attempt']} at {e['site']}]")


@main.command()
@click.argument("production")
@click.option("--jobs", "more", type=click.IntRange(min=1), required=True, help="How many jobs to add.")
@click.pass_context
def extend(ctx: click.Context, production: str, more: int) -> None:
    """Add jobs to PRODUCTION (id or name): more detsim jobs now, their later steps as they come."""
    with _manager(ctx) as manager:
        total = manager.extend(production, more)
    click.echo(f"production {production}: {total} jobs")


@main.command()
@click.argument("production")
@click.pass_context
def pause(ctx: click.Context, production: str) -> None:
    """Create no more jobs for PRODUCTION until resume (jobs at the dispatcher go on)."""
    with _manager(ctx) as manager:
        changed = manager.pause(production)
        state = manager.get(production)["state"]
    click.echo(f"production {production}: {state}" + ("" if changed else " (unchanged)"))


@main.command()
@click.argument("production")
@click.pass_context
def resume(ctx: click.Context, production: str) -> None:
    """Create jobs for a paused PRODUCTION again."""
    with _manager(ctx) as manager:
        changed = manager.resume(production)
        state = manager.get(production)["state"]
    click.echo(f"production {production}: {state}" + ("" if changed else " (unchanged)"))


@main.command()
@click.argument("production")
@click.pass_context
def kill(ctx: click.Context, production: str) -> None:
    """Kill PRODUCTION: no more jobs, and its tasks' jobs killed at the dispatcher."""
    with _manager(ctx) as manager:
        answers = manager.kill(production)
    click.echo(f"production {production}: killed ({len(answers)} tasks)")


def _json_logs() -> None:
    logsetup.configure(json_logs=True)
