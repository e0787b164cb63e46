"""The programs' start-up check: their schema is at the version the code needs, or they refuse to start.

    require_head(conn, name)            on a psycopg connection (the services' own, no extra connection)
    require_head_sqlalchemy(conn, name) on a SQLAlchemy connection (the conditions service)

Both raise SchemaVersionError, e.g. "schema wms is at version 1, the code needs 2: run `juno-dcs up`".
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from sqlalchemy.engine import Connection

from juno_dcs.errors import GridStateError
from juno_dcs.migrations.registry import VERSIONS_SCHEMA, by_name
from juno_dcs.migrations.runner import current_on, head

UPGRADE_HINT = "run `juno-dcs up` (or `juno-dcs db-upgrade`), which upgrades every schema"


class SchemaVersionError(GridStateError):
    """The database's schema is not at the version this code needs."""

    def __init__(self, schema: str, current: str | None, needed: str) -> None:
        self.schema, self.current, self.needed = schema, current, needed
        where = "has no version (not created or not migrated yet)" if current is None else f"is at version {current}"
        super().__init__(f"schema {schema} {where}, the code needs {needed}: {UPGRADE_HINT}")


def pg_version(conn: psycopg.Connection[Any], name: str) -> str | None:
    """The version recorded for schema `name` (None: no version table)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        table = cur.execute("SELECT to_regclass(%s)", (f"{VERSIONS_SCHEMA}.{name}",)).fetchone()
        if table is None or table[0] is None:
            return None
        row = cur.execute(sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(VERSIONS_SCHEMA, name))
                          ).fetchone()
    return None if row is None else str(row[0])


def require_head(conn: psycopg.Connection[Any], name: str) -> None:
    """Raise SchemaVersionError unless schema `name` is at head. Leaves no transaction open on an autocommit
    connection; on a transactional one the caller's transaction reads it."""
    current, needed = pg_version(conn, name), head(by_name(name))
    if current != needed:
        raise SchemaVersionError(name, current, needed)


def require_head_sqlalchemy(conn: Connection, name: str) -> None:
    schema = by_name(name)
    current, needed = current_on(conn, schema), head(schema)
    if current != needed:
        raise SchemaVersionError(name, current, needed)


def checked_pool(url: str, name: str, size: int) -> Any:
    """A psycopg pool (dict rows, transactions) on `url` whose schema `name` was checked to be at head; closed
    again when it is not."""
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    pool: ConnectionPool[Any] = ConnectionPool(url, min_size=1, max_size=size,
                                               kwargs={"row_factory": dict_row, "autocommit": False}, open=True)
    try:
        with pool.connection() as conn:
            require_head(conn, name)  # the schema is made and upgraded by juno_dcs.migrations (`juno-dcs up`)
    except BaseException:
        pool.close()
        raise
    return pool
