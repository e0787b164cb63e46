"""Build or upgrade Rucio's schema; run as `python -m juno_dcs.grid.rucio_schema bootstrap|upgrade`
with RUCIO_CONFIG set to the grid's rucio.cfg (Rucio reads its configuration once per process)."""

from __future__ import annotations

import click

from juno_dcs.clikit import EXIT_CODES_EPILOG, KitCommand


def bootstrap() -> None:
    from rucio.db.sqla.util import build_database, create_base_vo, create_root_account

    build_database()  # tables, and the alembic stamp at head
    create_base_vo()
    create_root_account()


def upgrade() -> None:
    from alembic import command
    from alembic.config import Config
    from rucio.common.config import config_get

    command.upgrade(Config(config_get("alembic", "cfg")), "head")


@click.command("rucio_schema", cls=KitCommand, epilog=EXIT_CODES_EPILOG)
@click.argument("action", type=click.Choice(["bootstrap", "upgrade"]))
def main(action: str) -> None:
    """Build (bootstrap) or upgrade Rucio's schema in the database of $RUCIO_CONFIG."""
    actions = {"bootstrap": bootstrap, "upgrade": upgrade}
    actions[action]()


if __name__ == "__main__":
    main(prog_name="python -m juno_dcs.grid.rucio_schema")
