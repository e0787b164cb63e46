"""Version 1 of schema prodsys: the production manager: productions, steps, jobs, history.

Exactly the DDL of release 0.1 (commit e9a0c23), IF NOT EXISTS included, so that a grid made before
migrations existed is recognised at version 1 without any change."""

from __future__ import annotations

from alembic import op

revision = "1"
down_revision = None
branch_labels = None
depends_on = None

DDL = """
CREATE SCHEMA IF NOT EXISTS prodsys;
CREATE TABLE IF NOT EXISTS prodsys.productions (
    production_id bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    steering      jsonb NOT NULL,
    state         text NOT NULL,
    jobs          integer NOT NULL,
    rule_ids      jsonb,
    created       timestamptz NOT NULL DEFAULT now(),
    updated       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS prodsys.steps (
    production_id bigint NOT NULL REFERENCES prodsys.productions ON DELETE CASCADE,
    step          text NOT NULL,
    position      integer NOT NULL,
    task_id       bigint,
    closed        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (production_id, step)
);
CREATE TABLE IF NOT EXISTS prodsys.jobs (
    production_id bigint NOT NULL,
    step          text NOT NULL,
    job_number    integer NOT NULL,
    job_id        bigint NOT NULL,
    input         text,
    created       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (production_id, step, job_number),
    FOREIGN KEY (production_id, step) REFERENCES prodsys.steps ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS prodsys.history (
    production_id bigint NOT NULL REFERENCES prodsys.productions ON DELETE CASCADE,
    time          timestamptz NOT NULL DEFAULT now(),
    action        text NOT NULL,
    detail        text NOT NULL DEFAULT ''
);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise NotImplementedError("release 0.1 had no migrations: there is nothing to go back to")
