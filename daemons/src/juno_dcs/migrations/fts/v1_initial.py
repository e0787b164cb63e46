"""Version 1 of schema fts: the transfer service (FTS3-compatible): jobs, files, link limits, optimizer decisions.

Exactly the DDL of release 0.1 (commit e9a0c23), IF NOT EXISTS included, so that a grid made before
migrations existed is recognised at version 1 without any change."""

from __future__ import annotations

from alembic import op

revision = "1"
down_revision = None
branch_labels = None
depends_on = None

DDL = """
CREATE SCHEMA IF NOT EXISTS fts;
CREATE TABLE IF NOT EXISTS fts.jobs (
    job_id          text PRIMARY KEY,
    job_state       text NOT NULL,
    job_type        text NOT NULL DEFAULT 'N',
    vo_name         text NOT NULL,
    user_dn         text NOT NULL,
    priority        integer NOT NULL,
    params          jsonb NOT NULL,
    job_metadata    jsonb,
    submit_time     timestamptz NOT NULL DEFAULT now(),
    job_finished    timestamptz,
    reason          text,
    canceled        boolean NOT NULL DEFAULT false,
    copy_mode       text,
    verify_checksum text NOT NULL,
    overwrite       boolean NOT NULL,
    retry           integer NOT NULL,
    retry_delay     integer NOT NULL,
    timeout         integer,
    bring_online    integer,
    archive_timeout integer,
    sid             text
);
CREATE TABLE IF NOT EXISTS fts.files (
    file_id          bigserial PRIMARY KEY,
    job_id           text NOT NULL REFERENCES fts.jobs ON DELETE CASCADE,
    file_index       integer NOT NULL,
    source_rank      integer NOT NULL DEFAULT 0,
    file_state       text NOT NULL,
    source_surl      text NOT NULL,
    dest_surl        text NOT NULL,
    source_se        text NOT NULL,
    dest_se          text NOT NULL,
    source_token     text,
    dest_token       text,
    file_metadata    jsonb,
    staging_metadata jsonb,
    filesize         bigint,
    checksum         text,
    activity         text,
    reason           text,
    retry_count      integer NOT NULL DEFAULT 0,
    next_attempt     timestamptz NOT NULL DEFAULT now(),
    start_time       timestamptz,
    finish_time      timestamptz,
    staging_start    timestamptz,
    staging_finished timestamptz,
    archive_start    timestamptz,
    transferred      bigint,
    throughput       double precision,
    copy_mode        text,
    worker           text,
    heartbeat        timestamptz
);
ALTER TABLE fts.files ADD COLUMN IF NOT EXISTS archive_metadata jsonb;  -- tape hints (collocation)
CREATE INDEX IF NOT EXISTS files_by_job ON fts.files (job_id);
CREATE INDEX IF NOT EXISTS files_waiting ON fts.files (file_state, source_se, dest_se, next_attempt);
CREATE TABLE IF NOT EXISTS fts.link_limits (
    source_se    text NOT NULL,
    dest_se      text NOT NULL,
    active_limit integer NOT NULL,
    updated      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_se, dest_se)
);
CREATE TABLE IF NOT EXISTS fts.optimizer_decisions (
    decision_id   bigserial PRIMARY KEY,
    source_se     text NOT NULL,
    dest_se       text NOT NULL,
    decided       timestamptz NOT NULL DEFAULT now(),
    previous      integer NOT NULL,
    active_limit  integer NOT NULL,
    success_rate  double precision,
    throughput    double precision,
    queued        integer NOT NULL,
    reason        text NOT NULL
);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise NotImplementedError("release 0.1 had no migrations: there is nothing to go back to")
