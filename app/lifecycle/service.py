"""Applying lifecycle transitions to issue rows: shared by status changes, triage, hooks and jobs.

The rules decide (``transitions``); :func:`apply_transition` writes the decision through
``app.issues.write`` and queues its notification.

Helpers here flush but never commit; the calling use case owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import AppContext
from app.errors import Conflict, DomainError, InvalidPayload
from app.issues.status import GroupSubStatus
from app.issues.write import set_status
from app.lifecycle.forecast import WINDOW_HOURS, compute_forecast, epoch_hour
from app.lifecycle.transitions import (
    IssueState,
    Target,
    Transition,
    TransitionRejected,
    parse_target,
    parse_update_target,
    plan_transition,
)
from app.lifecycle.transitions import plan_update as plan_update_transition
from app.models import Activity, Forecast, Group, HourlyCount
from app.notifications.outbox import enqueue

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _transition_error(exc: TransitionRejected) -> DomainError:
    """The domain error of a rejected transition: 409 when the state forbids it, else 422."""
    if exc.conflict:
        return Conflict(exc.message, code=exc.code)
    return InvalidPayload(exc.message, code=exc.code, details=exc.details)


def state_of(group: Group) -> IssueState:
    """The parts of an issue row the transition rules look at."""
    return IssueState(
        status=group.status,
        substatus=group.substatus,
        priority=group.priority,
        initial_priority=group.initial_priority,
        priority_locked=group.priority_locked,
    )


def _ruled(rule: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run a transition rule; a rejection becomes its domain error (409 / 422)."""
    try:
        return rule(*args, **kwargs)
    except TransitionRejected as exc:
        raise _transition_error(exc) from None


def parse(status: Any, substatus: Any) -> Target:
    """A requested (status, substatus) by number or name, else 422 with the rule's code."""
    return _ruled(parse_target, status, substatus)


def parse_update(status: Any, substatus: Any, *, conditions: bool) -> Target | None:
    """The (status, substatus) a person's update asks for (None: unchanged), else 422."""
    return _ruled(parse_update_target, status, substatus, conditions=conditions)


def plan_update(group: Group, target: Target, *, conditions: bool) -> Transition | None:
    """A person's transition of an issue to ``target`` (None: nothing changes), else 409 / 422."""
    return _ruled(plan_update_transition, state_of(group), target, conditions=conditions)


def plan(group: Group, target: Target) -> Transition | None:
    """The transition of an issue to ``target`` (None: already there), else 409 / 422."""
    return _ruled(plan_transition, state_of(group), target)


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
    activity = set_status(
        session,
        group,
        status=transition.status,
        substatus=transition.substatus,
        priority=transition.priority,
        ignore_until=ignore_until,
        activity_type=transition.activity_type,
        now=now,
        actor=actor,
        data=data,
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
