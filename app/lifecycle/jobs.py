"""Periodic lifecycle jobs: auto-resolve, new/regressed → ongoing, forecast refresh.

Every change is a conditional UPDATE (or happens under a row lock) that re-checks the issue's
state, so several service processes may run the jobs at once: a concurrent fresh occurrence is
never lost and nothing changes twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from app.context import AppContext
from app.issues.activity import add_activity
from app.issues.status import GroupStatus, GroupSubStatus, status_columns
from app.issues.write import lock_group
from app.lifecycle.service import refresh_forecast
from app.lifecycle.transitions import (
    AUTO_ONGOING,
    AUTO_ONGOING_FROM,
    RESOLVED_BY_AGE,
    Transition,
    ongoing_cutoff,
    resolve_cutoff,
)
from app.models import Forecast, Group, Project
from app.notifications.outbox import enqueue, render_queued
from app.notifications.rules import EventName

BATCH = 500
FORECAST_MAX_AGE = timedelta(days=1)


def _record(
    session: Session,
    ctx: AppContext,
    ids: Sequence[int],
    activity_type: str,
    *,
    now: datetime,
    event: EventName | None,
) -> None:
    """Activity (and notification) for issues a conditional UPDATE just changed."""
    if not ids:
        return
    for group in session.scalars(select(Group).where(Group.id.in_(ids)).order_by(Group.id)):
        add_activity(session, group, activity_type, now=now)
        if event:
            session.flush()
            enqueue(session, ctx, group, event, now=now)
    session.flush()


def _change_in_batches(
    ctx: AppContext,
    *,
    condition: ColumnElement[bool],
    transition: Transition,
    now: datetime,
) -> int:
    """Apply ``transition`` to every issue matching ``condition``, batch by batch; return the count.

    The written columns are those of ``issues.write.set_status`` (one rule, ``status_columns``),
    set-based: one UPDATE per batch.
    """
    values = status_columns(
        transition.status, transition.substatus, ignore_until=None, now=now
    ).values()
    if transition.priority is not None:
        values["priority"] = transition.priority
    changed = 0
    while True:
        with ctx.db.write() as session:
            ids = list(
                session.scalars(select(Group.id).where(condition).order_by(Group.id).limit(BATCH))
            )
            if not ids:
                break
            stmt = (
                update(Group)
                .where(Group.id.in_(ids), condition)
                .values(**values, substatus_changed_at=now)
                .returning(Group.id)
                .execution_options(synchronize_session=False)
            )
            done = list(session.scalars(stmt))
            _record(session, ctx, done, transition.activity_type, now=now, event=transition.event)
            render_queued(session)
            session.commit()
        changed += len(done)
        if len(ids) < BATCH:
            break
    return changed


def auto_resolve(ctx: AppContext) -> dict[str, Any]:
    """Resolve unresolved issues not seen for their project's ``resolve_age_hours``."""
    now = ctx.now()
    type_ids = [t.type_id for t in ctx.registry.types() if t.enable_auto_resolve]
    with ctx.db.read() as session:
        projects = session.execute(
            select(Project.id, Project.resolve_age_hours).where(Project.resolve_age_hours > 0)
        ).all()
    resolved = 0
    for project_id, hours in projects:
        condition = and_(
            Group.project_id == project_id,
            Group.status == GroupStatus.UNRESOLVED,
            Group.last_seen < resolve_cutoff(now, hours),
            Group.type_id.in_(type_ids),
        )
        resolved += _change_in_batches(
            ctx, condition=condition, transition=RESOLVED_BY_AGE, now=now
        )
    return {"resolved": resolved, "projects": len(projects)}


def new_and_regressed_to_ongoing(ctx: AppContext) -> dict[str, Any]:
    """Move new issues 7 days after first seen, regressed ones 7 days after regressing."""
    now = ctx.now()
    cutoff = ongoing_cutoff(now)
    # When each substatus of AUTO_ONGOING_FROM started: a new issue when first seen, a regressed
    # one when it regressed.
    since = {
        GroupSubStatus.NEW: Group.first_seen,
        GroupSubStatus.REGRESSED: Group.substatus_changed_at,
    }
    condition = and_(
        Group.status == GroupStatus.UNRESOLVED,
        or_(*(and_(Group.substatus == sub, since[sub] < cutoff) for sub in AUTO_ONGOING_FROM)),
    )
    moved = _change_in_batches(ctx, condition=condition, transition=AUTO_ONGOING, now=now)
    return {"ongoing": moved}


def refresh_forecasts(ctx: AppContext) -> dict[str, Any]:
    """Recompute the forecasts of issues archived until escalating that are a day old."""
    now = ctx.now()
    stale = now - FORECAST_MAX_AGE
    due = and_(
        Group.status == GroupStatus.IGNORED,
        Group.substatus == GroupSubStatus.ARCHIVED_UNTIL_ESCALATING,
        or_(Forecast.group_id.is_(None), Forecast.computed_at <= stale),
    )
    stmt = (
        select(Group.id)
        .outerjoin(Forecast, Forecast.group_id == Group.id)
        .where(due)
        .order_by(Group.id)
    )
    refreshed = 0
    last_id = 0
    while True:
        with ctx.db.write() as session:
            ids = list(session.scalars(stmt.where(Group.id > last_id).limit(BATCH)))
            for group_id in ids:
                group = lock_group(session, group_id)
                if group is None or group.substatus != GroupSubStatus.ARCHIVED_UNTIL_ESCALATING:
                    continue
                current = session.get(Forecast, group_id, populate_existing=True)
                if current is not None and current.computed_at > stale:
                    continue  # another process refreshed it meanwhile
                refresh_forecast(session, group, now=now)
                refreshed += 1
            session.commit()
        if len(ids) < BATCH:
            break
        last_id = ids[-1]
    return {"refreshed": refreshed}
