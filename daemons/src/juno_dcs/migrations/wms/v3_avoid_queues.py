"""Version 3 of schema wms: the queues a job failed at with a transient error (`retry_elsewhere`), which
brokerage avoids for its next attempts when another queue fits (a JSON list of queue names)."""

from __future__ import annotations

from alembic import op

revision = "3"
down_revision = "2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE wms.jobs ADD COLUMN IF NOT EXISTS avoid_queues jsonb NOT NULL DEFAULT '[]'")


def downgrade() -> None:
    op.execute("ALTER TABLE wms.jobs DROP COLUMN IF EXISTS avoid_queues")
