"""Writing issue rows: the row lock and the recorded changes (every change bumps the ETag).

Helpers here flush at most; the calling use case owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.issues.activity import add_activity
from app.issues.fingerprint import hash_element
from app.issues.status import status_columns
from app.models import Activity, Group, GroupHash


def lock_group(session: Session, group_id: int) -> Group | None:
    """Load an issue row and lock it until the transaction ends (SELECT … FOR UPDATE)."""
    stmt = select(Group).where(Group.id == group_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).first()


def lock_by_fingerprint(session: Session, *, project_id: int, element: str) -> Group | None:
    """The project's issue keyed by one fingerprint element, locked (None if there is none)."""
    group_id = session.scalar(
        select(GroupHash.group_id).where(
            GroupHash.project_id == project_id, GroupHash.hash == hash_element(element)
        )
    )
    return None if group_id is None else lock_group(session, group_id)


def set_status(
    session: Session,
    group: Group,
    *,
    status: int,
    substatus: int | None,
    priority: int | None,
    ignore_until: dict[str, Any] | None,
    activity_type: str,
    now: datetime,
    actor: str | None,
    data: dict[str, Any] | None,
) -> Activity:
    """Move a locked issue to a (status, substatus) and record it as one activity.

    ``priority`` None keeps the priority; ``ignore_until`` is kept only with
    archived_until_condition_met.
    """
    if group.substatus != substatus or group.status != status:
        group.substatus_changed_at = now
    columns = status_columns(status, substatus, ignore_until=ignore_until, now=now)
    group.status = columns.status
    group.substatus = columns.substatus
    group.resolved_at = columns.resolved_at
    group.ignore_until = columns.ignore_until
    if priority is not None:
        group.priority = priority
    return add_activity(session, group, activity_type, now=now, data=data or {}, actor=actor)


def set_priority(
    session: Session,
    group: Group,
    priority: int,
    *,
    activity_type: str,
    now: datetime,
    actor: str | None,
    data: dict[str, Any],
) -> Activity:
    """Set a locked issue's priority by hand (locking it against automatic changes)."""
    group.priority = priority
    group.priority_locked = True
    activity = add_activity(session, group, activity_type, now=now, data=data, actor=actor)
    session.flush()
    return activity


def set_assignee(
    session: Session,
    group: Group,
    assignee: str | None,
    *,
    activity_type: str,
    now: datetime,
    actor: str | None,
) -> Activity:
    """Assign a locked issue (None unassigns), recording the previous assignee."""
    previous = group.assignee
    group.assignee = assignee
    data = {"assignee": assignee, "previous": previous}
    activity = add_activity(session, group, activity_type, now=now, data=data, actor=actor)
    session.flush()
    return activity
