"""`juno-dcs db-upgrade` and `juno-dcs db-versions`: the grid's schemas, apart from `up` (which upgrades them too).

    juno-dcs db-versions [--home DIR]   each schema's version in the database and the version this code needs
    juno-dcs db-upgrade  [--home DIR]   upgrade every schema to head (on a running grid the programs that use a
                                        schema with pending versions are stopped for it, then started again)
"""

from __future__ import annotations

from pathlib import Path

import click

from juno_dcs.clikit import KitCommand, grid_settings, home_option


@click.command("db-versions", cls=KitCommand)
@home_option
def db_versions(home: Path | None) -> None:
    """Show each schema's version and the version this code needs (exit 1 when one is behind)."""
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.schemas import versions

    settings = grid_settings(home)
    found = versions(GridHome(settings.home).load_state(), settings)
    behind = False
    for name, (have, need) in found.items():
        mark = "" if have == need else "   <- run `juno-dcs db-upgrade` or `juno-dcs up`"
        behind |= have != need
        click.echo(f"{name:<10} {have or '-':>4}  (head {need}){mark}")
    if behind:
        raise SystemExit(1)


@click.command("db-upgrade", cls=KitCommand)
@home_option
def db_upgrade(home: Path | None) -> None:
    """Upgrade every schema of the grid to the version this code needs."""
    from juno_dcs.grid.schemas import upgrade_home

    for line in upgrade_home(grid_settings(home)):
        click.echo(line)
