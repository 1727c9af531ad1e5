"""64-bit activities.project_id and webhook_deliveries.group_id

Project ids are 64-bit (detectors keep their own ids), so the activity rows of a project with an
id beyond 2**31 could not be written on PostgreSQL; delivery rows point at 64-bit issue ids.
SQLite's INTEGER is 64-bit already (the models use it there), so nothing changes on SQLite.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 04:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    """Apply this revision."""
    if _sqlite():
        return
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.alter_column(
            "project_id", existing_type=sa.Integer(), type_=sa.BigInteger(), nullable=False
        )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column(
            "group_id", existing_type=sa.Integer(), type_=sa.BigInteger(), nullable=True
        )


def downgrade() -> None:
    """Revert this revision."""
    if _sqlite():
        return
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column(
            "group_id", existing_type=sa.BigInteger(), type_=sa.Integer(), nullable=True
        )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.alter_column(
            "project_id", existing_type=sa.BigInteger(), type_=sa.Integer(), nullable=False
        )
