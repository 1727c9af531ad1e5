"""Use cases of people triaging issues: update, activity, forecast."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.context import AppContext
from app.errors import InvalidPayload, PreconditionFailed
from app.issue_types.registry import PRIORITY_NAMES, parse_priority
from app.issues.serialize import activity_out, etag, issue_payload
from app.issues.service import load_visible_group
from app.issues.status import status_name, substatus_name
from app.issues.write import set_assignee, set_priority
from app.lifecycle import service as lifecycle
from app.lifecycle.transitions import SET_ASSIGNEE, SET_PRIORITY, plan_priority
from app.models import Activity, Forecast, Group
from app.notifications import outbox
from app.schemas import MAX_ID
from app.triage.schemas import ActivityPage, ForecastOut, IgnoreUntilIn, IssueUpdateIn


def issue_for(
    session: Session, ctx: AppContext, principal: Principal, issue_id: int, *, lock: bool = False
) -> Group:
    """The issue, if the caller may see it, else 404 (the admin may triage hidden types)."""
    return load_visible_group(ctx, session, principal, issue_id, include_hidden=True, lock=lock)


def check_if_match(group: Group, if_match: str | None) -> None:
    """412 ``precondition_failed`` unless ``If-Match`` is absent, ``*`` or the current ETag.

    The ETag is also accepted without its quotes (``If-Match: 7-3`` for ``"7-3"``): a shell
    easily drops them, and the bare value names the same version, so refusing it with "the
    issue changed" would be wrong.
    """
    if if_match is None:
        return
    current = etag(group)
    bare = current.strip('"')
    for tag in (t.strip() for t in if_match.split(",")):
        if tag == "*" or tag.removeprefix("W/") in (current, bare):
            return
    raise PreconditionFailed(
        f"the issue changed: its ETag is now {current}", details={"etag": current}
    )


def _conditions(ignore_until: IgnoreUntilIn | None, now: datetime) -> dict[str, Any] | None:
    if ignore_until is None:
        return None
    if ignore_until.until is not None:
        until = ignore_until.until
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        return {"until": until.astimezone(UTC).isoformat()}
    return {
        "count": ignore_until.count,
        "window_seconds": ignore_until.window_seconds,
        "since": now.isoformat(),
    }


def _priority(changes: IssueUpdateIn) -> int | None:
    if changes.priority is None:
        return None
    try:
        return parse_priority(changes.priority)
    except ValueError as exc:
        raise InvalidPayload(
            str(exc), details=[{"field": "priority", "message": str(exc)}]
        ) from None


def _apply_update(
    session: Session,
    ctx: AppContext,
    principal: Principal,
    group: Group,
    changes: IssueUpdateIn,
    *,
    now: datetime,
) -> None:
    """Parse the changes, plan the status transition, then write each change to the issue."""
    has_conditions = changes.ignore_until is not None
    target = lifecycle.parse_update(changes.status, changes.substatus, conditions=has_conditions)
    priority = _priority(changes)
    conditions = _conditions(changes.ignore_until, now)
    transition = (
        None if target is None else lifecycle.plan_update(group, target, conditions=has_conditions)
    )
    if transition is not None:
        data: dict[str, Any] = {
            "status": status_name(transition.status),
            "substatus": substatus_name(transition.substatus),
        }
        if conditions is not None:
            data["ignore_until"] = conditions
        lifecycle.apply_transition(
            session,
            ctx,
            group,
            transition,
            now=now,
            actor=principal.actor,
            data=data,
            ignore_until=conditions,
        )
    # After the transition, which may have moved an unlocked priority.
    priority = plan_priority(lifecycle.state_of(group), priority)
    if priority is not None:
        set_priority(
            session,
            group,
            priority,
            activity_type=SET_PRIORITY,
            now=now,
            actor=principal.actor,
            data={"priority": PRIORITY_NAMES[priority]},
        )
    if "assignee" in changes.model_fields_set and changes.assignee != group.assignee:
        set_assignee(
            session,
            group,
            changes.assignee,
            activity_type=SET_ASSIGNEE,
            now=now,
            actor=principal.actor,
        )


def update_issue(
    *,
    ctx: AppContext,
    principal: Principal,
    issue_id: int,
    changes: IssueUpdateIn,
    if_match: str | None,
) -> tuple[dict[str, Any], str]:
    """Apply a person's changes to an issue; returns the issue answer and its ETag."""
    now = ctx.now()
    with ctx.db.write() as session:
        group = issue_for(session, ctx, principal, issue_id, lock=True)
        check_if_match(group, if_match)
        _apply_update(session, ctx, principal, group, changes, now=now)
        body = issue_payload(session, group, ctx.registry)
        tag = etag(group)
        outbox.render_queued(session)
        session.commit()
    return body, tag


def list_activity(
    *, ctx: AppContext, principal: Principal, issue_id: int, limit: int, cursor: str | None
) -> ActivityPage:
    """One page of an issue's activity, newest first."""
    # ASCII digits only: isdigit() also holds for "²", which int() refuses.
    if cursor is not None and not (cursor.isascii() and cursor.isdigit() and int(cursor) <= MAX_ID):
        raise InvalidPayload(
            "invalid cursor", details=[{"field": "cursor", "message": "not a cursor"}]
        )
    with ctx.db.read() as session:
        group = issue_for(session, ctx, principal, issue_id)
        stmt = select(Activity).where(Activity.group_id == group.id)
        if cursor is not None:
            stmt = stmt.where(Activity.id < int(cursor))
        rows = list(session.scalars(stmt.order_by(Activity.id.desc()).limit(limit + 1)))
        page = [activity_out(r) for r in rows[:limit]]
    more = len(rows) > limit
    return ActivityPage(data=page, next_cursor=str(page[-1].id) if more and page else None)


def get_forecast(*, ctx: AppContext, principal: Principal, issue_id: int) -> ForecastOut:
    """The issue's stored escalation forecast (empty ceilings when it has none)."""
    with ctx.db.read() as session:
        group = issue_for(session, ctx, principal, issue_id)
        row = session.get(Forecast, group.id)
        if row is None:
            return ForecastOut(issue_id=group.id, computed_at=None, start_date=None, ceilings=[])
        return ForecastOut(
            issue_id=group.id,
            computed_at=row.computed_at,
            start_date=row.start_date,
            ceilings=list(row.ceilings or []),
        )
