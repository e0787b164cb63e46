"""SQL of the condition data (SQLAlchemy Core, so every value is a bound parameter). Only SQL lives here:
callers open the transaction (`with engine.begin() as conn:`) and pass `conn` down.

    cond_tags      global tags: open while prepared, then locked; `modified` moves at every change
    cond_folders   folders and their payload types (shared by the tags)
    cond_payloads  immutable payloads by sha256
    cond_iovs      (tag, folder, first_run..last_run) -> payload; for a run the newest covering row wins

The tables below describe the current version for the queries; the versions themselves (the DDL) are the
migrations in juno_dcs/migrations/conditions, which `create_schema` and the grid's `up` run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine

from juno_dcs.migrations.check import require_head_sqlalchemy
from juno_dcs.migrations.registry import CONDITIONS
from juno_dcs.migrations.runner import upgrade_on

Row = dict[str, Any]

metadata = sa.MetaData()
_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mariadb_engine": "InnoDB"}

tags = sa.Table(
    "cond_tags", metadata,
    sa.Column("tag_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.String(1000), nullable=False, default=""),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("created", _TIME, nullable=False),
    sa.Column("modified", _TIME, nullable=False),
    sa.Column("locked", _TIME, nullable=True),
    **_TABLE_ARGS,
)
folders = sa.Table(
    "cond_folders", metadata,
    sa.Column("folder_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("payload_type", sa.String(32), nullable=False),
    sa.Column("description", sa.String(1000), nullable=False, default=""),
    **_TABLE_ARGS,
)
payloads = sa.Table(
    "cond_payloads", metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", _BLOB, nullable=False),
    sa.Column("created", _TIME, nullable=False),
    **_TABLE_ARGS,
)
iovs = sa.Table(
    "cond_iovs", metadata,
    sa.Column("iov_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("tag_id", sa.Integer, sa.ForeignKey("cond_tags.tag_id"), nullable=False),
    sa.Column("folder_id", sa.Integer, sa.ForeignKey("cond_folders.folder_id"), nullable=False),
    sa.Column("first_run", sa.Integer, nullable=False),
    sa.Column("last_run", sa.Integer, nullable=False),
    sa.Column("payload_hash", sa.String(64), sa.ForeignKey("cond_payloads.hash"), nullable=False),
    sa.Column("inserted", _TIME, nullable=False),
    sa.Index("cond_iovs_lookup", "tag_id", "folder_id", "first_run"),
    **_TABLE_ARGS,
)


def make_engine(url: str, *, pool_size: int = 5, read_only: bool = False, timeout: float = 5.0) -> Engine:
    """An engine for `url` (mysql+pymysql://... or sqlite://...). With read_only, every MySQL/MariaDB session
    is made READ ONLY as well (the account should also have SELECT only), and runs in autocommit: a request's
    statements are reads that need no transaction of their own, so no ROLLBACK follows each one when its
    connection goes back to the pool (a bundle costs the database one statement, not two)."""
    if url.startswith("sqlite"):
        return sa.create_engine(url)
    engine = sa.create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=3600,
        connect_args={"connect_timeout": int(timeout), "read_timeout": int(timeout) * 2,
                      "write_timeout": int(timeout) * 2},
        **({"isolation_level": "AUTOCOMMIT", "skip_autocommit_rollback": True} if read_only else {}),
    )
    if read_only:
        @sa.event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
    return engine


def create_schema(conn: Connection) -> None:
    """Create the tables or upgrade them to the version this code needs, on `conn` (its transaction): the
    migrations of juno_dcs/migrations/conditions (SQLite in the unit tests, `juno-dcs conditions init`)."""
    upgrade_on(conn, CONDITIONS)


def check_schema(url: str, timeout: float = 5.0) -> bool:
    """Raise SchemaVersionError when the database at `url` answers with another version than this code needs;
    False when it does not answer (the service starts anyway and its /health says so), True when it is right."""
    engine = make_engine(url, pool_size=1, timeout=timeout)
    try:
        with engine.connect() as conn:
            require_head_sqlalchemy(conn, CONDITIONS.name)
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()
    return True


def _one(result: sa.CursorResult[Any]) -> Row | None:
    row = result.mappings().first()
    return dict(row) if row is not None else None


# --- tags
def get_tag(conn: Connection, name: str, *, for_update: bool = False) -> Row | None:
    query = sa.select(tags).where(tags.c.name == name)
    if for_update:
        query = query.with_for_update()
    return _one(conn.execute(query))


def list_tags(conn: Connection) -> list[Row]:
    return [dict(r) for r in conn.execute(sa.select(tags).order_by(tags.c.name)).mappings()]


def insert_tag(conn: Connection, name: str, description: str, state: str, now: dt.datetime) -> int:
    result = conn.execute(sa.insert(tags).values(name=name, description=description, state=state, created=now,
                                                 modified=now, locked=now if state == "locked" else None))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def touch_tag(conn: Connection, tag_id: int, now: dt.datetime, *, lock: bool = False) -> None:
    values: dict[str, Any] = {"modified": now}
    if lock:
        values.update(state="locked", locked=now)
    conn.execute(sa.update(tags).where(tags.c.tag_id == tag_id).values(**values))


# --- folders
def get_folder(conn: Connection, name: str) -> Row | None:
    return _one(conn.execute(sa.select(folders).where(folders.c.name == name)))


def insert_folder(conn: Connection, name: str, payload_type: str, description: str) -> int:
    result = conn.execute(sa.insert(folders).values(name=name, payload_type=payload_type, description=description))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def tag_folders(conn: Connection, tag_id: int) -> list[Row]:
    """The folders with intervals in a tag, with their interval counts and run coverage."""
    query = (
        sa.select(folders.c.name, folders.c.payload_type, folders.c.description,
                  sa.func.count(iovs.c.iov_id).label("iovs"), sa.func.min(iovs.c.first_run).label("first_run"),
                  sa.func.max(iovs.c.last_run).label("last_run"))
        .select_from(iovs.join(folders, iovs.c.folder_id == folders.c.folder_id))
        .where(iovs.c.tag_id == tag_id)
        .group_by(folders.c.folder_id, folders.c.name, folders.c.payload_type, folders.c.description)
        .order_by(folders.c.name)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


# --- payloads
def payload_exists(conn: Connection, digest: str) -> bool:
    return conn.execute(sa.select(payloads.c.hash).where(payloads.c.hash == digest)).first() is not None


def insert_payload(conn: Connection, digest: str, data: bytes, now: dt.datetime) -> bool:
    """Store a payload unless it is there; True when stored. Two writers racing on one hash: the loser's
    primary-key violation is the caller's to ignore (payloads are content-addressed)."""
    if payload_exists(conn, digest):
        return False
    conn.execute(sa.insert(payloads).values(hash=digest, size=len(data), data=data, created=now))
    return True


def get_payload(conn: Connection, digest: str) -> bytes | None:
    row = conn.execute(sa.select(payloads.c.data).where(payloads.c.hash == digest)).first()
    return bytes(row[0]) if row is not None else None


# --- intervals of validity
def insert_iov(conn: Connection, tag_id: int, folder_id: int, first_run: int, last_run: int, digest: str,
               now: dt.datetime) -> None:
    conn.execute(sa.insert(iovs).values(tag_id=tag_id, folder_id=folder_id, first_run=first_run, last_run=last_run,
                                        payload_hash=digest, inserted=now))


def _iov_columns() -> list[sa.ColumnElement[Any]]:
    return [folders.c.name.label("folder"), folders.c.payload_type, iovs.c.first_run, iovs.c.last_run,
            iovs.c.payload_hash, payloads.c.size.label("payload_size")]


def _iov_from() -> sa.Join:
    return iovs.join(folders, iovs.c.folder_id == folders.c.folder_id).join(
        payloads, iovs.c.payload_hash == payloads.c.hash)


def lookup(conn: Connection, tag_id: int, folder: str, run: int) -> Row | None:
    """The newest interval of `folder` in the tag that covers `run`."""
    query = (sa.select(*_iov_columns()).select_from(_iov_from())
             .where(iovs.c.tag_id == tag_id, folders.c.name == folder, iovs.c.first_run <= run, iovs.c.last_run >= run)
             .order_by(iovs.c.iov_id.desc()).limit(1))
    return _one(conn.execute(query))


def lookup_all(conn: Connection, tag_id: int, run: int) -> list[Row]:
    """For every folder of the tag, the newest interval that covers `run`."""
    newest = (sa.select(sa.func.max(iovs.c.iov_id))
              .where(iovs.c.tag_id == tag_id, iovs.c.first_run <= run, iovs.c.last_run >= run)
              .group_by(iovs.c.folder_id))
    query = (sa.select(*_iov_columns()).select_from(_iov_from())
             .where(iovs.c.iov_id.in_(newest)).order_by(folders.c.name))
    return [dict(r) for r in conn.execute(query).mappings()]


def tag_iovs(conn: Connection, tag_id: int) -> list[Row]:
    """Every interval of a tag in insertion order."""
    query = (sa.select(*_iov_columns(), iovs.c.inserted).select_from(_iov_from())
             .where(iovs.c.tag_id == tag_id).order_by(iovs.c.iov_id))
    return [dict(r) for r in conn.execute(query).mappings()]


def iov_map(conn: Connection, tag_id: int, limit: int) -> list[Row]:
    """At most `limit` intervals of a tag, oldest first (a later interval covering a run wins), without the
    insertion times: what a client needs to resolve any run itself."""
    query = (sa.select(*_iov_columns()).select_from(_iov_from())
             .where(iovs.c.tag_id == tag_id).order_by(iovs.c.iov_id).limit(limit))
    return [dict(r) for r in conn.execute(query).mappings()]


def payloads_of(conn: Connection, digests: Sequence[str]) -> dict[str, bytes]:
    if not digests:
        return {}
    rows = conn.execute(sa.select(payloads.c.hash, payloads.c.data).where(payloads.c.hash.in_(list(digests))))
    return {r[0]: bytes(r[1]) for r in rows}


def counts(conn: Connection) -> dict[str, int]:
    """Rows per table (tests check that refused requests wrote nothing)."""
    return {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (tags, folders, payloads, iovs)}
