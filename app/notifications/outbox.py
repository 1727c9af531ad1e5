"""Writing notifications to the outbox, in the transaction of the change they report."""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import AppContext
from app.issues.serialize import issue_payload
from app.models import Group, Organization, Project, Webhook, WebhookDelivery
from app.rollout.rules import FlagKind
from app.rollout.service import is_enabled

EVENTS = (
    "issue.created",
    "issue.regressed",
    "issue.escalating",
    "issue.resolved",
    "issue.ignored",
    "issue.unresolved",
)


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


def enqueue(session: Session, ctx: AppContext, group: Group, event: str, *, now: datetime) -> int:
    """Queue ``event`` for every webhook of the issue's project subscribed to it.

    Returns the number of deliveries queued. Respects the type's post-process flag, and an
    issue created while that flag was off never sends ``issue.created``. Only flushes: the
    rows commit (or roll back) with the caller's change.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    if event == "issue.created" and not group.notify_created:
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
    for webhook in webhooks:
        delivery_id = uuid.uuid4().hex
        session.add(
            WebhookDelivery(
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
        )
    session.flush()
    return len(webhooks)
