"""Applying lifecycle transitions to issue rows: shared by status changes, triage, hooks and jobs.

Helpers here flush but never commit; the calling use case owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import AppContext
from app.issues.activity import add_activity
from app.issues.status import GroupStatus, GroupSubStatus
from app.lifecycle.forecast import WINDOW_HOURS, compute_forecast, epoch_hour
from app.lifecycle.transitions import IssueState, Transition
from app.models import Activity, Forecast, Group, HourlyCount
from app.notifications.outbox import enqueue


def state_of(group: Group) -> IssueState:
    """The parts of an issue row the transition rules look at."""
    return IssueState(
        status=group.status,
        substatus=group.substatus,
        priority=group.priority,
        initial_priority=group.initial_priority,
        priority_locked=group.priority_locked,
    )


def lock_group(session: Session, group_id: int) -> Group | None:
    """Load an issue row and lock it until the transaction ends (SELECT … FOR UPDATE)."""
    stmt = select(Group).where(Group.id == group_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).first()


def apply_transition(
    session: Session,
    ctx: AppContext,
    group: Group,
    transition: Transition,
    *,
    now: datetime,
    actor: str | None,
    data: dict[str, Any] | None = None,
    ignore_until: dict[str, Any] | None = None,
) -> Activity:
    """Move a locked issue to the transition's state, record the activity, queue the webhook."""
    if group.substatus != transition.substatus or group.status != transition.status:
        group.substatus_changed_at = now
    group.status = transition.status
    group.substatus = transition.substatus
    if transition.priority is not None:
        group.priority = transition.priority
    if transition.status == GroupStatus.RESOLVED:
        group.resolved_at = now
    else:
        group.resolved_at = None
    group.ignore_until = (
        ignore_until
        if transition.substatus == GroupSubStatus.ARCHIVED_UNTIL_CONDITION_MET
        else None
    )
    activity = add_activity(
        session, group, transition.activity_type, now=now, data=data or {}, actor=actor
    )
    if transition.substatus == GroupSubStatus.ARCHIVED_UNTIL_ESCALATING:
        refresh_forecast(session, group, now=now)
    session.flush()
    if transition.event:
        enqueue(session, ctx, group, transition.event, now=now)
    return activity


def refresh_forecast(session: Session, group: Group, *, now: datetime) -> Forecast:
    """Compute the issue's escalation forecast from its hourly counts and store it."""
    computed_hour = epoch_hour(now)
    rows = session.execute(
        select(HourlyCount.hour, HourlyCount.count).where(
            HourlyCount.group_id == group.id,
            HourlyCount.hour >= computed_hour - WINDOW_HOURS,
            HourlyCount.hour < computed_hour,
        )
    ).all()
    result = compute_forecast(
        {int(h): int(c) for h, c in rows}, now=now, first_seen=group.first_seen
    )
    row = session.get(Forecast, group.id)
    if row is None:
        row = Forecast(group_id=group.id)
        session.add(row)
    row.computed_at = now
    row.start_date = result.start_date.isoformat()
    row.ceilings = list(result.ceilings)
    session.flush()
    return row
