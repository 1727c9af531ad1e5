"""Writing notifications to the outbox, in the transaction of the change they report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import AppContext
from app.issue_types.flags import FlagKind
from app.issue_types.registry import Registry
from app.issues.serialize import issue_payload
from app.models import Group, Organization, Project, Webhook, WebhookDelivery
from app.notifications.rules import EVENTS, ISSUE_CREATED, EventName
from app.rollout.service import is_enabled

# Deliveries queued in a session's transaction, whose bodies ``render_queued`` renders again.
_QUEUED = "notifications.queued"


def post_process_enabled(
    session: Session, ctx: AppContext, *, project_id: int, type_id: int
) -> bool:
    """Whether issues of this type in this project notify (the type's post-process flag)."""
    issue_type = ctx.registry.get(type_id)
    if issue_type is None:
        return False
    if issue_type.released:
        return True
    project = session.get(Project, project_id)
    if project is None:
        return False
    org = session.get(Organization, project.organization_id)
    if org is None:
        return False
    return is_enabled(ctx, session, issue_type, FlagKind.POST_PROCESS, org.id, org.early_adopter)


def delivery_body(delivery_id: str, event: str, created_at: datetime, issue: object) -> str:
    """The exact JSON text POSTed to the receiver (and signed)."""
    payload = {"id": delivery_id, "event": event, "created_at": created_at, "issue": issue}
    return orjson.dumps(payload, option=orjson.OPT_UTC_Z).decode()


def enqueue(
    session: Session, ctx: AppContext, group: Group, event: EventName, *, now: datetime
) -> int:
    """Queue ``event`` for every webhook of the issue's project subscribed to it.

    Returns the number of deliveries queued. Respects the type's post-process flag, and an
    issue created while that flag was off never sends ``issue.created``. Only flushes: the
    rows commit (or roll back) with the caller's change; the use case calls
    :func:`render_queued` just before its commit, so the ``issue`` shows the issue as committed.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    if event == ISSUE_CREATED and not group.notify_created:
        return 0
    webhooks = [
        w
        for w in session.scalars(
            select(Webhook).where(Webhook.project_id == group.project_id).order_by(Webhook.id)
        )
        if event in (w.events or ())
    ]
    if not webhooks:
        return 0
    if not post_process_enabled(session, ctx, project_id=group.project_id, type_id=group.type_id):
        return 0
    if group.id is None:
        session.flush()
    issue = issue_payload(session, group, ctx.registry)
    rows = []
    for webhook in webhooks:
        delivery_id = uuid.uuid4().hex
        row = WebhookDelivery(
            id=delivery_id,
            webhook_id=webhook.id,
            group_id=group.id,
            event=event,
            body=delivery_body(delivery_id, event, now, issue),
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(row)
        rows.append(row)
    session.info.setdefault(_QUEUED, []).append((group, rows, ctx.registry))
    session.flush()
    return len(rows)


def unrendered(session: Session) -> bool:
    """Whether deliveries were queued in this session and not rendered yet (a test's check)."""
    return bool(session.info.get(_QUEUED))


def render_queued(session: Session) -> None:
    """Render the bodies queued in this transaction from the issues as it leaves them.

    Every use case that may queue a delivery calls this just before its commit: the body then
    shows each issue as committed, whatever the use case changed after ``enqueue`` (the latest
    occurrence included). Rows a savepoint or a rollback took away are skipped.
    """
    queued: list[tuple[Group, list[WebhookDelivery], Registry]] = session.info.pop(_QUEUED, [])
    if not queued:
        return
    session.flush()
    rendered: dict[int, Any] = {}
    for group, rows, registry in queued:
        live = [r for r in rows if r in session]
        if not live or group not in session:
            continue  # rolled back with a savepoint
        if id(group) not in rendered:
            rendered[id(group)] = issue_payload(session, group, registry)
        for row in live:
            row.body = delivery_body(row.id, row.event, row.created_at, rendered[id(group)])
    session.flush()
