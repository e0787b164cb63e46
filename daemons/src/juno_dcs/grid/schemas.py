"""The grid's own schemas at `up` (and `juno-dcs db-upgrade`): upgrade them to head before the programs start.

    upgrade(state, sup=None) -> [str]    PostgreSQL schemas of the grid's database (juno_dcs.migrations.runner);
                                         on a running grid (`sup`), the programs that use a schema with pending
                                         versions are stopped first; `up` (or db-upgrade) starts them again
    versions(state) -> {schema: (current, head)}   PostgreSQL and the conditions database

The conditions database (MariaDB) is upgraded by grid.conditions.ensure_database, with the admin account.
Connections: a NullPool engine each, disposed of before returning (grid.budget counts the services only).
"""

from __future__ import annotations

import sqlalchemy as sa

from juno_dcs.grid import conditions, database
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.runners import Runner, runner_for
from juno_dcs.migrations import runner
from juno_dcs.migrations.registry import SCHEMAS
from juno_dcs.settings import GridSettings


def _users(pending: list[str], sup: Runner) -> list[str]:
    wanted = {p for s in SCHEMAS if s.name in pending for p in s.programs}
    return [p.name for p in sup.processes() if p.name in wanted and p.state in {"RUNNING", "STARTING", "BACKOFF"}]


def upgrade(state: GridState, sup: Runner | None = None) -> list[str]:
    """Upgrade every PostgreSQL schema of the grid to head; what was done, one line each."""
    url = database.grid_url(state)
    pending = [name for name, (have, need) in runner.versions_postgres(url).items() if have != need]
    done = []
    if sup is not None and pending:
        for name in _users(pending, sup):
            sup.stop_program(name)
            done.append(f"stopped {name} while its schema upgrades")
    done += [step.describe() for step in runner.upgrade_postgres(url) if step.changed]
    return done


def versions(state: GridState, settings: GridSettings) -> dict[str, tuple[str | None, str]]:
    """{schema: (its version in the database or None, the version this code needs)}."""
    found = runner.versions_postgres(database.grid_url(state))
    url = sa.engine.make_url(conditions.admin_url(state, settings)).set(database=state.conditions_db)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        found["conditions"] = runner.conditions_version(engine)
    finally:
        engine.dispose()
    return found


def upgrade_home(settings: GridSettings) -> list[str]:
    """`juno-dcs db-upgrade`: what `up` does to the schemas, alone (under the home's launcher lock): the conditions
    database and every PostgreSQL schema to head; on a running grid the programs stopped for it start again."""
    from juno_dcs.grid.launcher import exclusive

    home = GridHome(settings.home)
    state = home.load_state()
    with exclusive(home):
        sup = runner_for(home, state)
        running = sup.running()
        url = sa.engine.make_url(conditions.admin_url(state, settings)).set(database=state.conditions_db)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
        try:
            step = runner.upgrade_conditions(engine)
        finally:
            engine.dispose()
        done = [step.describe()] if step.changed else []
        done += upgrade(state, sup if running else None)
        if running:
            sup.start_all()
        return done or ["every schema is at the version this code needs"]
