"""Retention: projects.retention_days and the indexes a cleanup pass reads by

Existing projects get ISSUE_PLATFORM_DEFAULT_RETENTION_DAYS (90 unless set). Each index lets a
cleanup pass reach what expired by an index range instead of scanning a table (see
docs/adr/0010-retention.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 02:15:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_occurrences_project_detection", "occurrences", ["project_id", "detection_time"]),
    ("ix_occurrences_project_event", "occurrences", ["project_id", "event_id"]),
    (
        "ix_status_change_records_project_created",
        "status_change_records",
        ["project_id", "created_at"],
    ),
    ("ix_pending_windows_ends", "pending_windows", ["window_ends_at"]),
)


def _default_days() -> int:
    from app.config import get_settings

    return get_settings().default_retention_days


def upgrade() -> None:
    """Apply this revision."""
    # ADD COLUMN with a constant default: no table rewrite on either database.
    op.add_column(
        "projects",
        sa.Column("retention_days", sa.Integer(), server_default="90", nullable=False),
    )
    days = _default_days()
    if days != 90:
        op.execute(sa.text("UPDATE projects SET retention_days = :d").bindparams(d=days))
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    """Revert this revision."""
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("retention_days")
