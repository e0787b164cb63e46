"""`juno-dashboard serve|collect`: the grid's dashboard and its collector.

    juno-dashboard serve --config etc/dashboard.yaml --port 27060 [--no-collect]   # page + JSON API (+ collector)
    juno-dashboard collect --config etc/dashboard.yaml [--run-once] [--sleep-time S]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from juno_dcs.errors import ConfigError, JunoDcsError

if TYPE_CHECKING:
    from juno_dcs.dashboard.service import Context

logger = logging.getLogger("juno_dcs.dashboard")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="juno-dashboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json-logs", action="store_true", help="log as JSON lines")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the page and the JSON API")
    serve.add_argument("--config", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--no-collect", action="store_true", help="do not run the collector in this process")
    collect = sub.add_parser("collect", help="sample the time series into schema `dashboard`")
    collect.add_argument("--config", type=Path, required=True)
    collect.add_argument("--run-once", action="store_true", help="one cycle, print what it wrote, exit")
    collect.add_argument("--sleep-time", type=float, default=None, help="override sample_s")
    args = parser.parse_args(argv)
    from juno_dcs import logsetup

    logsetup.configure(args.json_logs, quiet=("urllib3", "uvicorn.access"))
    try:
        return _serve(args) if args.command == "serve" else _collect(args)
    except JunoDcsError as exc:
        print(f"juno-dashboard: error: {exc}", file=sys.stderr)
        return 2


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


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from juno_dcs.dashboard.collector import Collector
    from juno_dcs.dashboard.routes import create_app

    ctx = _setup(args.config)
    collector = None
    if ctx.config.collect and not args.no_collect:
        collector = ctx.collector = Collector(ctx.config, ctx.rucio)
        threading.Thread(target=collector.run, name="collector", daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host=args.host, port=args.port, log_level="warning"))
    try:
        server.run()  # stops on SIGTERM and SIGINT
    finally:
        if collector is not None:
            collector.stop.set()
    return 0


def _collect(args: argparse.Namespace) -> int:
    from juno_dcs.dashboard.collector import Collector

    ctx = _setup(args.config, args.sleep_time)
    collector = Collector(ctx.config, ctx.rucio)

    def _stop(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping after this cycle", signum)
        collector.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    cycle = collector.run(once=args.run_once)
    if args.run_once:
        print(json.dumps(cycle.as_json()))
        return 1 if cycle.errors else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
