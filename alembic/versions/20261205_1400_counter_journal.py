"""Counter journal: counting changes of ingest transactions waiting for a fold

Issues' counts (times seen, last seen, hourly counts) are written by a fold that merges many
ingest transactions' changes (docs/adr/0011-counter-journal.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 14:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "counter_journal",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counter_journal")),
    )


def downgrade() -> None:
    """Revert this revision (refused while counts wait in the journal: they would be lost)."""
    pending = op.get_bind().execute(sa.text("SELECT count(*) FROM counter_journal")).scalar()
    if pending:
        raise RuntimeError(
            f"counter_journal holds {pending} unfolded row(s): start the service once (any "
            "read folds them) before downgrading below revision 0005"
        )
    op.drop_table("counter_journal")
