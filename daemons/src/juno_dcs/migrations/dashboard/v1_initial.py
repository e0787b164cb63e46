"""Version 1 of schema dashboard: the dashboard's samples.

Exactly the DDL of release 0.1 (commit e9a0c23), IF NOT EXISTS included, so that a grid made before
migrations existed is recognised at version 1 without any change."""

from __future__ import annotations

from alembic import op

revision = "1"
down_revision = None
branch_labels = None
depends_on = None

DDL = """
CREATE SCHEMA IF NOT EXISTS dashboard;
CREATE TABLE IF NOT EXISTS dashboard.sample (
    series text NOT NULL,
    key text NOT NULL,
    slot timestamptz NOT NULL,
    value double precision NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series, key, slot)
);
CREATE INDEX IF NOT EXISTS sample_series_slot ON dashboard.sample (series, slot);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise NotImplementedError("release 0.1 had no migrations: there is nothing to go back to")
