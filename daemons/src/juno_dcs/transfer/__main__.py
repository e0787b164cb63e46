"""`juno-fts serve|worker --config FILE`: the transfer service's REST API and its copy workers.

    juno-fts serve  --config etc/transfer.yaml --port 25030   # FTS3-compatible REST API (uvicorn)
    juno-fts worker --config etc/transfer.yaml [--run-once]    # copies; any number may run at once
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from juno_dcs.errors import JunoDcsError
from juno_dcs.transfer import db
from juno_dcs.transfer.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="juno-fts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the REST API")
    serve.add_argument("--config", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    work = sub.add_parser("worker", help="run copies")
    work.add_argument("--config", type=Path, required=True)
    work.add_argument("--run-once", action="store_true", help="one cycle, wait for its copies, exit")
    work.add_argument("--threads", type=int, default=None, help="override worker.threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except JunoDcsError as exc:
        print(f"juno-fts: error: {exc}", file=sys.stderr)
        return 2
    if config.ca_dir is not None:  # gfal2 (davix) finds the trusted CAs through the environment
        os.environ["X509_CERT_DIR"] = str(config.ca_dir)
        os.environ["SSL_CERT_DIR"] = str(config.ca_dir)
    if config.ca_bundle is not None:
        os.environ["SSL_CERT_FILE"] = str(config.ca_bundle)
    if args.command == "serve":
        _serve(args)
        return 0
    from juno_dcs.transfer import copier
    from juno_dcs.transfer.worker import Worker

    copier.set_log_level(config.worker.gfal2_log)

    pool = db.open_pool(config.database_url, size=config.worker.db_connections)
    if args.threads:
        config = config.model_copy(update={"worker": config.worker.model_copy(update={"threads": args.threads})})
    worker = Worker(config, pool)

    def _stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after the running copies", signum)
        worker.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run(once=args.run_once)
    pool.close()
    return 0


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    os.environ["JUNO_FTS_CONFIG"] = str(args.config.resolve())
    uvicorn.run("juno_dcs.transfer.asgi:app", host=args.host, port=args.port, workers=args.workers,
                log_level="warning")


if __name__ == "__main__":
    sys.exit(main())
