"""Version 1 of schema daemons: the daemon runner's heartbeats (juno_dcs.heartbeat).

Each instance of a daemon keeps one row, written at its passes; the live rows of one executable give each instance
its share of the work."""

from __future__ import annotations

from alembic import op

revision = "1"
down_revision = None
branch_labels = None
depends_on = None

DDL = """
CREATE SCHEMA IF NOT EXISTS daemons;
CREATE TABLE IF NOT EXISTS daemons.heartbeat (
    executable text NOT NULL,          -- the daemon: 'juno-wms agent', 'juno-fts worker', ...
    hostname   text NOT NULL,
    pid        integer NOT NULL,
    thread     text NOT NULL,          -- the thread's name: several instances may share a process
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (executable, hostname, pid, thread)
);
"""


def upgrade() -> None:
    op.execute(DDL)
