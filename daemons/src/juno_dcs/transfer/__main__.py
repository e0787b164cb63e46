"""`juno-fts serve|worker --config FILE`: the transfer service's REST API and its copy workers.

    juno-fts serve  --config etc/transfer.yaml --port 25030   # FTS3-compatible REST API (uvicorn)
    juno-fts worker --config etc/transfer.yaml [--run-once] [--log-json]   # copies; any number may run at once
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from juno_dcs.clikit import KitGroup, log_option

if TYPE_CHECKING:
    from juno_dcs.transfer.config import TransferConfig

CONFIG = click.Path(dir_okay=False, path_type=Path)


@click.group(cls=KitGroup, help=__doc__)
def main() -> None:
    pass


def _load(path: Path) -> TransferConfig:
    """The service's configuration, with the CA paths gfal2 (davix) finds through the environment."""
    from juno_dcs.transfer.config import load_config

    config = load_config(path)
    if config.ca_dir is not None:
        os.environ["X509_CERT_DIR"] = str(config.ca_dir)
        os.environ["SSL_CERT_DIR"] = str(config.ca_dir)
    if config.ca_bundle is not None:
        os.environ["SSL_CERT_FILE"] = str(config.ca_bundle)
    return config


@main.command()
@click.option("--config", type=CONFIG, required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
@click.option("--workers", type=int, default=2, show_default=True, help="uvicorn worker processes")
@click.option("--reuse-port", is_flag=True, help="Share the port with other instances (SO_REUSEPORT).")
@log_option
def serve(config: Path, host: str, port: int, workers: int, reuse_port: bool, log_json: bool) -> None:
    """Run the REST API."""
    from juno_dcs import asgiserve, daemon

    daemon.configure_logging(log_json)
    cfg = _load(config)
    os.environ["JUNO_FTS_CONFIG"] = str(config.resolve())
    with_tls = cfg.server_cert is not None and cfg.server_key is not None
    asgiserve.serve("juno_dcs.transfer.asgi:app", host, port, workers, reuse_port, log_level="warning",
                ssl_certfile=str(cfg.server_cert) if with_tls else None,
                ssl_keyfile=str(cfg.server_key) if with_tls else None)


@main.command()
@click.option("--config", type=CONFIG, required=True)
@click.option("--run-once", is_flag=True, help="One cycle, wait for its copies, exit.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Override worker.threads.")
@click.option("--sleep-time", type=click.FloatRange(min=0.0), default=None,
              help="Override worker.poll_interval (the longest wait for a NOTIFY of new work).")
@log_option
def worker(config: Path, run_once: bool, threads: int | None, sleep_time: float | None, log_json: bool) -> None:
    """Run copies (any number of workers may run: they share the files by heartbeats)."""
    from juno_dcs import daemon
    from juno_dcs.heartbeat import Heartbeats, timeout_for
    from juno_dcs.transfer import copier, db
    from juno_dcs.transfer.worker import Worker

    daemon.configure_logging(log_json)
    cfg = _load(config)
    copier.set_log_level(cfg.worker.gfal2_log)
    if threads:
        cfg = cfg.model_copy(update={"worker": cfg.worker.model_copy(update={"threads": threads})})
    sleep = sleep_time if sleep_time is not None else cfg.worker.poll_interval
    pool = db.open_pool(cfg.database_url, size=cfg.worker.db_connections)  # the heartbeats use it too
    copies = Worker(cfg, pool)
    daemon.stop_on_signals(copies.stop)
    try:
        daemon.run_daemon("juno-fts worker", copies.run_once, stop=copies.stop, once=run_once, sleep_time=sleep,
                          idle=copies.idle,
                          heartbeats=Heartbeats("juno-fts worker", pool.connection, timeout_for(sleep)))
    finally:
        copies.drain()
        pool.close()

if __name__ == "__main__":
    sys.exit(main())
