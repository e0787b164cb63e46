"""`python -m juno_dcs.conditions serve --config FILE --port N`: the read-only conditions service (uvicorn).

    python -m juno_dcs.conditions serve --config home/etc/conditions.yaml --port 23040 [--workers 2]
    python -m juno_dcs.conditions openapi        # print the OpenAPI description
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from juno_dcs.errors import JunoDcsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m juno_dcs.conditions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--config", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    serve.add_argument("--access-log", action="store_true", help="log every request (tests count them)")
    sub.add_parser("openapi", help="print the OpenAPI description")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "openapi":
        from juno_dcs.conditions.config import ServiceConfig
        from juno_dcs.conditions.db import make_engine
        from juno_dcs.conditions.routes import create_app

        app = create_app(ServiceConfig(database_url="sqlite://"), make_engine("sqlite://"))
        print(json.dumps(app.openapi(), indent=2))
        return 0
    from juno_dcs.conditions.config import load_config
    from juno_dcs.conditions.db import check_schema

    try:
        config = load_config(args.config)  # fail here, with the reason, rather than in every worker
        if not check_schema(config.database_url, config.db_timeout):
            logging.getLogger(__name__).warning("the conditions database does not answer: its version is unchecked")
    except JunoDcsError as exc:
        print(f"juno-conditions: error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    os.environ["JUNO_CONDITIONS_CONFIG"] = str(args.config.resolve())
    uvicorn.run("juno_dcs.conditions.asgi:app", host=args.host, port=args.port, workers=args.workers,
                log_level="info" if args.access_log else "warning", access_log=args.access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
