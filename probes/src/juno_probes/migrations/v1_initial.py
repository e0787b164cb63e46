"""Version 1 of schema probes (then `monitor`): the probes' results, then in schema `monitor`.

Exactly the DDL of release 0.1 (commit e9a0c23), IF NOT EXISTS included, so that a grid made before
migrations existed is recognised at version 1 without any change."""

from __future__ import annotations

from alembic import op

revision = "1"
down_revision = None
branch_labels = None
depends_on = None

DDL = """
CREATE SCHEMA IF NOT EXISTS monitor;
CREATE TABLE IF NOT EXISTS monitor.probe_run (
    id bigserial PRIMARY KEY,
    probe text NOT NULL,
    status smallint NOT NULL,
    message text NOT NULL,
    perfdata jsonb NOT NULL DEFAULT '{}',
    details jsonb NOT NULL DEFAULT '{}',
    started_at timestamptz NOT NULL,
    duration_s double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS probe_run_probe_started ON monitor.probe_run (probe, started_at);
CREATE TABLE IF NOT EXISTS monitor.tpc_attempt (
    id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES monitor.probe_run (id) ON DELETE CASCADE,
    source text NOT NULL,
    destination text NOT NULL,
    mode text NOT NULL,
    ok boolean NOT NULL,
    duration_s double precision NOT NULL,
    throughput_mb_s double precision,
    error text,
    at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS tpc_attempt_link ON monitor.tpc_attempt (source, destination, mode, at);
CREATE INDEX IF NOT EXISTS tpc_attempt_at ON monitor.tpc_attempt (at);
CREATE TABLE IF NOT EXISTS monitor.schedule_slot (
    slot text PRIMARY KEY,
    next_run timestamptz NOT NULL,
    claimed_by text,
    claimed_at timestamptz
);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise NotImplementedError("release 0.1 had no migrations: there is nothing to go back to")
