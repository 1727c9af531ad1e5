"""Recording what happened to an issue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.models import Activity, Group


def add_activity(
    session: Session,
    group: Group,
    type_: str,
    *,
    now: datetime,
    data: dict[str, Any] | None = None,
    actor: str | None = None,
) -> Activity:
    """Add one activity row and bump the issue's version (its ETag)."""
    row = Activity(
        group_id=group.id,
        project_id=group.project_id,
        type=type_,
        data=data or {},
        actor=actor,
        created_at=now,
    )
    session.add(row)
    group.version += 1
    group.updated_at = now
    return row
