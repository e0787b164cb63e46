"""The grid's own PostgreSQL role and database, and Rucio's schema in it.

The role and database are made through a superuser connection (settings.pg_admin_url). The schema is
built by Rucio's own bootstrap on first start and upgraded by alembic afterwards; both run in a child
process with RUCIO_CONFIG pointing at the grid, because Rucio reads its configuration once per process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from juno_dcs.errors import ConfigError, ServiceError
from juno_dcs.grid.home import GridHome, GridState

logger = logging.getLogger(__name__)


def pg_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def shown(url: str) -> str:
    """A connection URL as logs and errors may show it: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def admin_connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ServiceError(
            f"PostgreSQL at {shown(url)} does not answer ({exc}); start it or set JUNO_DCS_PG_ADMIN_URL"
        ) from exc


def ensure_database(state: GridState) -> bool:
    """Create the grid's role and database unless they exist; True when the database was created."""
    with admin_connect(state.pg_admin_url) as conn:
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (state.db_user,)).fetchone()
        if role is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(state.db_user), sql.Literal(state.db_password)
                )
            )
        db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (state.db_name,)).fetchone()
        if db is not None:
            return False
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8'").format(
                sql.Identifier(state.db_name), sql.Identifier(state.db_user)
            )
        )
        logger.info("created database %s", state.db_name)
        return True


def schema_exists(state: GridState) -> bool:
    """True when Rucio's schema was already built in the grid's database."""
    url = grid_url(state)
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'rucio' AND table_name = 'alembic_version'"
        ).fetchone()
    return row is not None


def leftovers(state: GridState) -> list[str]:
    """The grid's role and database where they already exist in PostgreSQL (with how many connections the role
    holds): what an earlier grid at the same home path left behind."""
    with admin_connect(state.pg_admin_url) as conn:
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (state.db_user,)).fetchone()
        db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (state.db_name,)).fetchone()
        held = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (state.db_user,)).fetchone()
    found = [f"database {state.db_name}"] if db else []
    if role:
        found.append(f"role {state.db_user}" + (f" (holding {held[0]} connections)" if held and held[0] else ""))
    return found


def drop_database(state: GridState) -> None:
    """Remove the grid's database and role (used by `down --purge`)."""
    with admin_connect(state.pg_admin_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(state.db_name)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(state.db_user)))


def grid_url(state: GridState) -> str:
    """The grid's own database, as its own role."""
    host, port = pg_host_port(state.pg_admin_url)
    return f"postgresql://{state.db_user}:{state.db_password}@{host}:{port}/{state.db_name}"


def prepare_schema(home: GridHome, state: GridState) -> str:
    """Bootstrap Rucio's schema on a new database, or upgrade an existing one; returns what was done."""
    action = "upgrade" if schema_exists(state) else "bootstrap"
    env = dict(os.environ, RUCIO_CONFIG=str(home.rucio_cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "juno_dcs.grid.rucio_schema", action],
        env=env, capture_output=True, text=True, check=False, timeout=600,
    )
    log = home.logs / "rucio-schema.log"
    with log.open("a") as handle:
        handle.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ServiceError(f"Rucio schema {action} failed (see {log}):\n  " + "\n  ".join(tail))
    return action


def check_admin_url(url: str) -> None:
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"pg_admin_url {shown(url)!r}: must be a postgresql:// URL")
