"""Build or upgrade Rucio's schema; run as `python -m juno_dcs.grid.rucio_schema bootstrap|upgrade`
with RUCIO_CONFIG set to the grid's rucio.cfg (Rucio reads its configuration once per process)."""

from __future__ import annotations

import click

from juno_dcs.clikit import EXIT_CODES_EPILOG, KitCommand

# Indexes this project adds to Rucio's own tables, after Rucio's bootstrap or upgrade (idempotent).
# - Rucio's `list_dids` by a name pattern (`raw status --day D`: `block.20200115.*`) filters `name LIKE 'prefix%'`.
#   The grid's database collates in C.UTF-8, so neither the (scope, name) primary key nor any text index can
#   serve a LIKE prefix, and PostgreSQL scans every DID of the scope: 90 ms at 110,000 DIDs, seconds at 4 million.
#   A text_pattern_ops index serves it; partial on collections (datasets and containers), the only DIDs listed by
#   pattern by hand, it holds about one row per 500 files.
EXTRA_INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS juno_dids_collection_name_pattern ON {schema}.dids"
    " (scope, name text_pattern_ops) WHERE did_type IN ('D', 'C')",
)


def extra_indexes() -> None:
    from rucio.common.config import config_get
    from rucio.db.sqla.session import get_engine
    from sqlalchemy import text

    schema = config_get("database", "schema", raise_exception=False, default="rucio")
    with get_engine().begin() as conn:
        for statement in EXTRA_INDEXES:
            conn.execute(text(statement.format(schema=schema)))


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
    extra_indexes()


if __name__ == "__main__":
    main(prog_name="python -m juno_dcs.grid.rucio_schema")
