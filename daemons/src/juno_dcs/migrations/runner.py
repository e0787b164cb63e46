"""Upgrade schemas to head with Alembic, programmatically (no alembic.ini, no env.py, no autogenerate).

    upgrade_postgres(url, names=None) -> [Step]   every PostgreSQL schema (or the named ones) of the grid's
                                                  database, in one transaction under an advisory lock: two `up`s
                                                  at once run one after the other, the second finds nothing to do
    upgrade_conditions(engine) -> Step            the conditions database (MariaDB under GET_LOCK, or SQLite)
    upgrade_on(conn, schema) -> Step              one schema on an open SQLAlchemy connection (the caller's
                                                  transaction; SQLite in memory in the unit tests)
    versions_postgres(url) -> {name: (current, head)}

Engines use NullPool and are disposed of before returning: migrations run before the services start and leave no
connection behind (juno_dcs.grid.budget counts the services' connections only).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from juno_dcs.errors import ServiceTimeout
from juno_dcs.migrations.registry import CONDITIONS, SCHEMAS, VERSIONS_SCHEMA, Schema, by_name

MIGRATION_LOCK = 0x4A4D4947  # PostgreSQL advisory lock ("JMIG") held while any schema of the database migrates
MARIADB_LOCK = "juno_dcs_migrations"
LOCK_WAIT_S = 300  # MariaDB's GET_LOCK: how long a second `up` waits for the first one's migrations


@dataclass(frozen=True)
class Step:
    """What an upgrade did to one schema: `before` None when it had no version (new, or made before versions)."""

    schema: str
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        if not self.changed:
            return f"schema {self.schema} at version {self.after}"
        start = "nothing" if self.before is None else f"version {self.before}"
        return f"schema {self.schema} upgraded from {start} to version {self.after}"


@cache
def script_of(schema: Schema) -> ScriptDirectory:
    where = str(schema.versions_dir())
    return ScriptDirectory(where, version_locations=[where])


def head(schema: Schema) -> str:
    found = script_of(schema).get_current_head()
    if found is None:
        raise RuntimeError(f"schema {schema.name} has no versions in {schema.versions_dir()}")
    return found


def _options(schema: Schema) -> dict[str, Any]:
    return {"version_table": schema.version_table, "version_table_schema": schema.version_table_schema}


def current_on(conn: Connection, schema: Schema) -> str | None:
    return MigrationContext.configure(conn, opts=_options(schema)).get_current_revision()


def upgrade_on(conn: Connection, schema: Schema) -> Step:
    """Run the versions of `schema` that `conn`'s database lacks, in the caller's transaction."""
    before = current_on(conn, schema)
    target = head(schema)
    if before == target:
        return Step(schema.name, before, target)
    script = script_of(schema)

    def steps(rev: Any, _context: MigrationContext) -> Any:
        return script._upgrade_revs("heads", rev)  # what alembic.command.upgrade does

    with EnvironmentContext(Config(), script, fn=steps, destination_rev="heads") as env:
        env.configure(connection=conn, **_options(schema))
        env.run_migrations()
    return Step(schema.name, before, target)


def sqlalchemy_url(url: str) -> str:
    """A libpq URL (postgresql://...) as SQLAlchemy's psycopg 3 URL; others unchanged."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _selected(names: tuple[str, ...] | None) -> list[Schema]:
    return list(SCHEMAS) if names is None else [by_name(n) for n in names]


def upgrade_postgres(url: str, names: tuple[str, ...] | None = None) -> list[Step]:
    """Upgrade the PostgreSQL schemas of the database at `url` (all of them by default) to head, atomically."""
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {VERSIONS_SCHEMA}"))
            return [upgrade_on(conn, schema) for schema in _selected(names)]
    finally:
        engine.dispose()


def versions_postgres(url: str) -> dict[str, tuple[str | None, str]]:
    """{schema: (its version in the database or None, the version this code needs)}."""
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return {s.name: (current_on(conn, s), head(s)) for s in SCHEMAS}
    finally:
        engine.dispose()


def upgrade_conditions(engine: sa.Engine) -> Step:
    """Upgrade the conditions database of `engine` (an account that may create tables; the caller disposes of
    the engine) to head. MariaDB commits DDL at once, so a named lock serialises two upgrades instead."""
    with engine.connect() as conn:
        locking = conn.dialect.name in ("mysql", "mariadb")
        if locking:
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"), {"n": MARIADB_LOCK, "t": LOCK_WAIT_S}).scalar()
            if got != 1:
                raise ServiceTimeout(f"another upgrade of the conditions database held the lock for {LOCK_WAIT_S} s")
            conn.commit()  # the lock belongs to the session, not to this (auto-begun) transaction
        try:
            with conn.begin():
                return upgrade_on(conn, CONDITIONS)
        finally:
            if locking:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": MARIADB_LOCK})
                conn.commit()


def conditions_version(engine: sa.Engine) -> tuple[str | None, str]:
    """(the conditions database's version or None, the version this code needs)."""
    with engine.connect() as conn:
        return current_on(conn, CONDITIONS), head(CONDITIONS)
