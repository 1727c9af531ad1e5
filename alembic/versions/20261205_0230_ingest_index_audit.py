"""Index audit of the ingest tables (ADR 0009)

- ``ix_groups_status_last_seen`` is dropped: the only query by status and last_seen, the
  auto-resolve job, runs per project and uses ``ix_groups_project_last_seen``; the index was
  rewritten whenever an ingest moved an issue's ``last_seen``.
- ``ix_occurrences_pending`` becomes partial (``WHERE pending_hash IS NOT NULL``): only the
  occurrences waiting in a noise window are looked up by it, and every other occurrence insert
  wrote an entry for nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 02:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_COLUMNS = ["project_id", "pending_hash", "detection_time"]
WAITING = sa.text("pending_hash IS NOT NULL")


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index("ix_groups_status_last_seen", table_name="groups")
    op.drop_index("ix_occurrences_pending", table_name="occurrences")
    op.create_index(
        "ix_occurrences_pending",
        "occurrences",
        PENDING_COLUMNS,
        sqlite_where=WAITING,
        postgresql_where=WAITING,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_occurrences_pending", table_name="occurrences")
    op.create_index("ix_occurrences_pending", "occurrences", PENDING_COLUMNS)
    op.create_index("ix_groups_status_last_seen", "groups", ["status", "last_seen"])
