"""Version 2 of schema fts: tokens are no longer kept in clear.

From this version the transfer service stores the tokens it is handed sealed (juno_dcs.tokens.sealed, a key
only the service reads) and drops them when a file reaches a final state. Release 0.2 and earlier stored them
as they came: this version erases every token that is not sealed. A transfer submitted before the upgrade and
still waiting then runs without its tokens, and storage that needs them refuses it with its reason: Rucio
submits it again with new tokens. `sealed:` values are left alone, so the statement is idempotent."""

from __future__ import annotations

from alembic import op

revision = "2"
down_revision = "1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE fts.files SET source_token = NULL WHERE source_token NOT LIKE 'sealed:%'")
    op.execute("UPDATE fts.files SET dest_token = NULL WHERE dest_token NOT LIKE 'sealed:%'")


def downgrade() -> None:
    """Nothing to undo: erased tokens cannot come back, and sealed ones are opaque to older releases."""
