"""Version 1 of schema wms: the dispatcher: tasks, jobs, job history, pilots.

Exactly the DDL of release 0.1 (commit e9a0c23), IF NOT EXISTS included, so that a grid made before
migrations existed is recognised at version 1 without any change."""

from __future__ import annotations

from alembic import op

revision = "1"
down_revision = None
branch_labels = None
depends_on = None

DDL = """
CREATE SCHEMA IF NOT EXISTS wms;
CREATE TABLE IF NOT EXISTS wms.tasks (
    task_id   bigserial PRIMARY KEY,
    name      text NOT NULL UNIQUE,
    kind      text NOT NULL,
    owner     text NOT NULL,
    priority  integer NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    killed    timestamptz
);
CREATE TABLE IF NOT EXISTS wms.jobs (
    job_id         bigserial PRIMARY KEY,
    task_id        bigint NOT NULL REFERENCES wms.tasks ON DELETE CASCADE,
    key            text NOT NULL,
    spec           jsonb NOT NULL,          -- transformation, args, env, inputs, outputs, log, job priority
    cores          integer NOT NULL,
    memory_mb      integer NOT NULL,
    walltime_s     integer NOT NULL,
    max_attempts   integer NOT NULL,
    priority       integer NOT NULL,        -- the task's priority plus the job's
    pinned_site    text,
    state          text NOT NULL,
    attempt        integer NOT NULL DEFAULT 1,
    site           text,
    queue          text,
    output_rse     text,
    broker_reason  text,
    pilot_id       text,
    lease_until    timestamptz,
    command        text,
    finished_by    text,                    -- pilot_id of the attempt's last finish report (replays)
    exit_code      integer,
    error_code     integer,
    error_class    text,
    error_diag     text,
    output_files   jsonb,
    log_file       jsonb,
    resources      jsonb,
    created        timestamptz NOT NULL DEFAULT now(),
    modified       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_id, key)
);
CREATE INDEX IF NOT EXISTS jobs_ready ON wms.jobs (queue, priority DESC, job_id) WHERE state = 'activated';
CREATE INDEX IF NOT EXISTS jobs_defined ON wms.jobs (priority DESC, job_id) WHERE state = 'defined';
CREATE INDEX IF NOT EXISTS jobs_leased ON wms.jobs (lease_until)
    WHERE state IN ('sent', 'starting', 'running', 'holding');
CREATE INDEX IF NOT EXISTS jobs_by_state ON wms.jobs (state, queue);
CREATE TABLE IF NOT EXISTS wms.job_history (
    id       bigserial PRIMARY KEY,
    job_id   bigint NOT NULL REFERENCES wms.jobs ON DELETE CASCADE,
    attempt  integer NOT NULL,
    state    text NOT NULL,
    time     timestamptz NOT NULL DEFAULT now(),
    reason   text NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_job ON wms.job_history (job_id, id);
CREATE TABLE IF NOT EXISTS wms.pilots (
    pilot_id   text PRIMARY KEY,
    site       text NOT NULL,
    queue      text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    last_job   bigint
);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise NotImplementedError("release 0.1 had no migrations: there is nothing to go back to")
