"""`python -m juno_dcs.conditions serve --config FILE --port N`: the read-only conditions service (uvicorn).

    python -m juno_dcs.conditions serve --config home/etc/conditions.yaml --port 23040 [--workers 2]
    python -m juno_dcs.conditions openapi        # print the OpenAPI description

Exit codes as every command's (juno_dcs.clikit): a bad configuration file exits 2 before any worker starts.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click

from juno_dcs.clikit import EXIT_CODES_EPILOG, KitGroup

PROG = "python -m juno_dcs.conditions"


@click.group(cls=KitGroup, name="juno-conditions", epilog=EXIT_CODES_EPILOG)
def main() -> None:
    """The read-only conditions service."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The service's YAML configuration.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), required=True)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="uvicorn worker processes")
@click.option("--access-log", is_flag=True, help="log every request (tests count them)")
def serve(config_path: Path, host: str, port: int, workers: int, access_log: bool) -> None:
    """Run the HTTP API."""
    from juno_dcs.conditions.config import load_config
    from juno_dcs.conditions.db import check_schema

    config = load_config(config_path)  # fail here, with the reason, rather than in every worker
    if not check_schema(config.database_url, config.db_timeout):
        logging.getLogger(__name__).warning("the conditions database does not answer: its version is unchecked")
    import uvicorn

    os.environ["JUNO_CONDITIONS_CONFIG"] = str(config_path.resolve())
    uvicorn.run("juno_dcs.conditions.asgi:app", host=host, port=port, workers=workers,
                log_level="info" if access_log else "warning", access_log=access_log)


@main.command()
def openapi() -> None:
    """Print the OpenAPI description."""
    from juno_dcs.conditions.config import ServiceConfig
    from juno_dcs.conditions.db import make_engine
    from juno_dcs.conditions.routes import create_app

    app = create_app(ServiceConfig(database_url="sqlite://"), make_engine("sqlite://"))
    click.echo(json.dumps(app.openapi(), indent=2))


if __name__ == "__main__":
    main(prog_name=PROG)
