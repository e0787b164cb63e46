"""Version 2 of schema dashboard: the raw blocks' summary (juno_dcs.ingest.summary).

One row per daily block: its view as `juno-dcs raw status --json` prints it, whether it is settled (closed, every
rule OK for every file), a key of its rules' states and lock counts, and when it was checked. The dashboard's
collector keeps it; `raw status` and the blocks panel read it instead of asking Rucio about every block."""

from __future__ import annotations

from alembic import op

revision = "2"
down_revision = "1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE IF NOT EXISTS dashboard.block_summary (
    scope text NOT NULL,
    name text NOT NULL,
    view jsonb NOT NULL,
    settled boolean NOT NULL,
    rules_key text NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, name)
)""")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS dashboard.block_summary")
