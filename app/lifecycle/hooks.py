"""Lifecycle rules the ingest path applies to issues that receive occurrences."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.context import AppContext
from app.issues.status import GroupStatus, GroupSubStatus
from app.lifecycle.forecast import ceiling_on, exceeds, hour_start
from app.lifecycle.service import apply_transition, state_of
from app.lifecycle.transitions import ONGOING, escalation, plan_transition
from app.models import Forecast, Group, Occurrence


def on_ignored_occurrences(
    session: Session,
    ctx: AppContext,
    group: Group,
    *,
    hour_counts: dict[int, int],
    detection_times: list[datetime],
    now: datetime,
) -> None:
    """Escalation and archived-until-condition rules for an ignored issue that got occurrences.

    ``hour_counts`` maps each epoch hour touched by this batch to the issue's total count for that
    hour *after* the batch (already written to ``hourly_counts``); the issue row is locked.
    """
    if group.status != GroupStatus.IGNORED:
        return
    if group.substatus == GroupSubStatus.ARCHIVED_UNTIL_ESCALATING:
        _check_forecast(session, ctx, group, hour_counts=hour_counts, now=now)
    elif group.substatus == GroupSubStatus.ARCHIVED_UNTIL_CONDITION_MET:
        _check_condition(session, ctx, group, detection_times=detection_times, now=now)


def _check_forecast(
    session: Session, ctx: AppContext, group: Group, *, hour_counts: dict[int, int], now: datetime
) -> None:
    """Escalate when an hour's count exceeds its day's forecast ceiling."""
    issue_type = ctx.registry.get(group.type_id)
    if issue_type is None or not issue_type.enable_escalation_detection:
        return
    forecast = session.get(Forecast, group.id)
    ceilings = forecast.ceilings if forecast else None
    start = date.fromisoformat(forecast.start_date) if forecast else None
    for hour, count in sorted(hour_counts.items()):
        moment = hour_start(hour)
        ceiling = ceiling_on(ceilings, start, moment.date())
        if exceeds(count, ceiling):
            data = {"reason": "forecast", "hour": moment.isoformat(), "count": count}
            data["ceiling"] = ceiling
            apply_transition(
                session, ctx, group, escalation(state_of(group)), now=now, actor=None, data=data
            )
            return


def _check_condition(
    session: Session,
    ctx: AppContext,
    group: Group,
    *,
    detection_times: list[datetime],
    now: datetime,
) -> None:
    """Apply the ``ignore_until`` conditions of an issue archived until they are met."""
    conditions = group.ignore_until or {}
    if conditions.get("until"):
        until = datetime.fromisoformat(conditions["until"])
        if now > until:
            transition = plan_transition(state_of(group), ONGOING)
            assert transition is not None
            data = {"reason": "ignore_until_passed", "until": conditions["until"]}
            apply_transition(session, ctx, group, transition, now=now, actor=None, data=data)
        return
    limit, window = conditions.get("count"), conditions.get("window_seconds")
    if limit is None or window is None or not detection_times:
        return
    latest = max(detection_times)
    start = latest - timedelta(seconds=int(window))
    since = conditions.get("since")
    filters = [
        Occurrence.group_id == group.id,
        Occurrence.detection_time > start,
        Occurrence.detection_time <= latest,
    ]
    if since:
        filters.append(Occurrence.detection_time >= datetime.fromisoformat(since))
    session.flush()
    seen = session.scalar(select(func.count()).select_from(Occurrence).where(*filters)) or 0
    if seen > int(limit):
        data = {"reason": "ignore_count", "count": seen, "window_seconds": int(window)}
        apply_transition(
            session, ctx, group, escalation(state_of(group)), now=now, actor=None, data=data
        )
