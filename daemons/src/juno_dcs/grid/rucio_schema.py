"""Build or upgrade Rucio's schema; run as `python -m juno_dcs.grid.rucio_schema bootstrap|upgrade`
with RUCIO_CONFIG set to the grid's rucio.cfg (Rucio reads its configuration once per process)."""

from __future__ import annotations

import sys


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


def main(argv: list[str]) -> int:
    actions = {"bootstrap": bootstrap, "upgrade": upgrade}
    if len(argv) != 1 or argv[0] not in actions:
        print("usage: python -m juno_dcs.grid.rucio_schema bootstrap|upgrade", file=sys.stderr)
        return 2
    actions[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
