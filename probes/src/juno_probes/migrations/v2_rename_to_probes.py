"""Version 2 of the probes' schema: `monitor` is renamed `probes` ("monitor" also named the pilot's payload
monitor and the dashboard's monitoring pages). Tables, rows, indexes, sequences and their defaults move with the
schema; the readers (juno_probes.store and .schedule, the dashboard through juno_probes.store, the grid's check)
use `probes` from this version on.
"""

from __future__ import annotations

from alembic import op

revision = "2"
down_revision = "1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER SCHEMA monitor RENAME TO probes")


def downgrade() -> None:
    op.execute("ALTER SCHEMA probes RENAME TO monitor")
