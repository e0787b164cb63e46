"""Version 1 of the conditions database: tags, folders, payloads, intervals of validity.

Exactly the tables that release 0.1 (commit e9a0c23) made with `metadata.create_all(checkfirst=True)`, frozen here
(not imported from juno_dcs.conditions.db, which moves on), and created the same way: a database made before
migrations existed is recognised at version 1 without any change. MariaDB in the grid, SQLite in the unit tests.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "1"
down_revision = None
branch_labels = None
depends_on = None

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mariadb_engine": "InnoDB"}


def _metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
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
    sa.Table(
        "cond_folders", metadata,
        sa.Column("folder_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("payload_type", sa.String(32), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False, default=""),
        **_TABLE_ARGS,
    )
    sa.Table(
        "cond_payloads", metadata,
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", _BLOB, nullable=False),
        sa.Column("created", _TIME, nullable=False),
        **_TABLE_ARGS,
    )
    sa.Table(
        "cond_iovs", metadata,
        sa.Column("iov_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("tag_id", sa.Integer, sa.ForeignKey("cond_tags.tag_id"), nullable=False),
        sa.Column("folder_id", sa.Integer, sa.ForeignKey("cond_folders.folder_id"), nullable=False),
        sa.Column("first_run", sa.Integer, nullable=False),
        sa.Column("last_run", sa.Integer, nullable=False),
        sa.Column("payload_hash", sa.String(64), sa.ForeignKey("cond_payloads.hash"), nullable=False),
        sa.Column("inserted", _TIME, nullable=False),
        sa.Index("cond_iovs_lookup", "tag_id", "folder_id", "first_run"),
        **_TABLE_ARGS,
    )
    return metadata


def upgrade() -> None:
    _metadata().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("release 0.1 had no migrations: there is nothing to go back to")
