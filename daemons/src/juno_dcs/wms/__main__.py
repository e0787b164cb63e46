"""`juno-wms serve|agent|...`: the dispatcher's HTTP API, its agent, and a small command-line client.

    juno-wms serve --config etc/wms.yaml --port 23050 [--workers 2]   # HTTP API (uvicorn, 127.0.0.1)
    juno-wms agent --config etc/wms.yaml [--run-once]                 # brokerage and leases; many may run
    juno-wms --url URL jobs [--task-id N] [--state S] | job ID | kill ID | retry ID | reassign ID [--site S]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from juno_dcs.errors import JunoDcsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="juno-wms", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("JUNO_WMS_URL", "http://127.0.0.1:23050"),
                        help="the dispatcher, for the client commands ($JUNO_WMS_URL)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--config", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    agent = sub.add_parser("agent", help="run brokerage and lease expiry")
    agent.add_argument("--config", type=Path, required=True)
    agent.add_argument("--run-once", action="store_true", help="one cycle, print what it did, exit")
    agent.add_argument("--bulk", type=int, default=None, help="override agent_bulk")
    agent.add_argument("--sleep-time", type=float, default=None, help="override agent_sleep_s")
    jobs = sub.add_parser("jobs", help="list jobs")
    jobs.add_argument("--task-id", type=int)
    jobs.add_argument("--state")
    jobs.add_argument("--site")
    jobs.add_argument("--limit", type=int, default=100)
    for name in ("job", "kill", "retry", "reassign"):
        one = sub.add_parser(name, help=f"{name} one job")
        one.add_argument("job_id", type=int)
        if name == "reassign":
            one.add_argument("--site")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "agent":
            return _agent(args)
        return _client(args)
    except JunoDcsError as exc:
        print(f"juno-wms: error: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from juno_dcs.wms.config import load_config
    from juno_dcs.wms.service import context

    context(load_config(args.config))  # a bad file fails here, with its reason, not in every worker
    os.environ["JUNO_WMS_CONFIG"] = str(args.config.resolve())
    uvicorn.run("juno_dcs.wms.asgi:app", host=args.host, port=args.port, workers=args.workers,
                log_level="warning", backlog=2048)
    return 0


def _agent(args: argparse.Namespace) -> int:
    from juno_dcs.wms import db
    from juno_dcs.wms.agent import Agent
    from juno_dcs.wms.brokerage import ReplicaLocator, RucioReplicaLocator
    from juno_dcs.wms.config import load_config
    from juno_dcs.wms.service import context

    config = load_config(args.config)
    ctx = context(config)
    locator: ReplicaLocator | None = RucioReplicaLocator(config.rucio_config) if config.rucio else None
    pool = db.open_pool(config.database_url, size=2)
    agent = Agent(pool, ctx, locator, bulk=args.bulk or config.agent_bulk,
                  sleep_s=args.sleep_time or config.agent_sleep_s)

    def _stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after this cycle", signum)
        agent.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        cycle = agent.run(once=args.run_once)
    finally:
        pool.close()
    if args.run_once:
        print(json.dumps(cycle.as_json()))
    return 0


def _client(args: argparse.Namespace) -> int:
    from juno_dcs.wms.client import WmsClient

    client = WmsClient(args.url)
    out: Any
    if args.command == "jobs":
        out = client.jobs(task_id=args.task_id, state=args.state, site=args.site, limit=args.limit)
        for j in out:
            print(f"{j['job_id']:>8} {j['state']:<10} {j['attempt']:>2} {j['site'] or '-':<13} {j['key']}")
        return 0
    if args.command == "job":
        out = client.job(args.job_id)
    elif args.command == "kill":
        out = client.kill_job(args.job_id)
    elif args.command == "retry":
        out = client.retry_job(args.job_id)
    else:
        out = client.reassign_job(args.job_id, args.site)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
