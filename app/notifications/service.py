"""Webhook use cases: register, list and delete receivers, read the delivery log."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

from sqlalchemy import and_, or_, select

from app.context import AppContext
from app.errors import InvalidPayload, NotFound
from app.issues import cursor as cursors
from app.models import Project, Webhook, WebhookDelivery
from app.notifications.egress import TargetUnresolvable, check_target, policy_of
from app.notifications.rules import UrlNotAllowed, url_host
from app.notifications.schemas import DeliveryOut, DeliveryPage, WebhookIn, WebhookOut


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class WebhookUrlNotAllowed(InvalidPayload):
    code = "webhook_url_not_allowed"


class WebhookHostUnresolvable(InvalidPayload):
    code = "webhook_host_unresolvable"


PRIVATE_TARGET_SETTINGS = (
    "ISSUE_PLATFORM_WEBHOOK_ALLOW_PRIVATE_NETWORKS",
    "ISSUE_PLATFORM_WEBHOOK_ALLOWED_NETWORKS",
)


def _project_not_found(project_id: int) -> NotFound:
    return NotFound(f"project {project_id} not found", code="project_not_found")


def _webhook_out(row: Webhook) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        project_id=row.project_id,
        url=row.url,
        events=list(row.events),
        created_at=row.created_at,
    )


def _delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event=row.event,
        issue_id=row.group_id,
        state=row.state,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        next_attempt_at=row.next_attempt_at,
    )


def create_webhook(ctx: AppContext, *, project_id: int, data: WebhookIn) -> WebhookOut:
    """Register a receiver for a project's issue events (its host resolved and judged now)."""
    with ctx.db.read() as session:
        if session.get(Project, project_id) is None:
            raise _project_not_found(project_id)
    try:
        check_target(data.url, policy_of(ctx.settings))
    except UrlNotAllowed as exc:
        raise WebhookUrlNotAllowed(
            f"{exc}: webhooks may only reach public addresses",
            details=[{"field": "url", "settings": list(PRIVATE_TARGET_SETTINGS)}],
        ) from None
    except TargetUnresolvable:
        raise WebhookHostUnresolvable(
            f"{url_host(data.url)[0]} does not resolve", details=[{"field": "url"}]
        ) from None
    # No transaction is open while the name resolves; the project is looked up again to write.
    with ctx.db.write() as session:
        if session.get(Project, project_id) is None:
            raise _project_not_found(project_id)
        row = Webhook(
            project_id=project_id,
            url=data.url,
            secret=data.secret,
            events=list(data.events),
            created_at=ctx.now(),
        )
        session.add(row)
        session.flush()
        out = _webhook_out(row)
        session.commit()
    return out


def list_webhooks(ctx: AppContext, *, project_id: int) -> list[WebhookOut]:
    """A project's receivers, oldest first."""
    with ctx.db.read() as session:
        if session.get(Project, project_id) is None:
            raise _project_not_found(project_id)
        rows = session.scalars(
            select(Webhook).where(Webhook.project_id == project_id).order_by(Webhook.id)
        )
        return [_webhook_out(r) for r in rows]


def delete_webhook(ctx: AppContext, *, webhook_id: int) -> None:
    """Remove a receiver together with its pending deliveries and log."""
    with ctx.db.write() as session:
        row = session.get(Webhook, webhook_id)
        if row is None:
            raise WebhookNotFound(f"webhook {webhook_id} not found")
        session.delete(row)
        session.commit()


_DELIVERY_ID = re.compile(r"[0-9a-f]{32}")


def _encode_cursor(row: WebhookDelivery) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, delivery_id = raw.partition("|")
        created_at = cursors.utc_time(stamp)  # zoned and within range once in UTC
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidPayload("invalid cursor", details=[{"field": "cursor"}]) from None
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise InvalidPayload("invalid cursor", details=[{"field": "cursor"}])
    return created_at, delivery_id


def list_deliveries(
    ctx: AppContext, *, webhook_id: int, limit: int, cursor: str | None
) -> DeliveryPage:
    """The delivery log of a webhook, newest first."""
    with ctx.db.read() as session:
        if session.get(Webhook, webhook_id) is None:
            raise WebhookNotFound(f"webhook {webhook_id} not found")
        stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        if cursor:
            created_at, delivery_id = _decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    WebhookDelivery.created_at < created_at,
                    and_(
                        WebhookDelivery.created_at == created_at,
                        WebhookDelivery.id < delivery_id,
                    ),
                )
            )
        stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        rows = list(session.scalars(stmt.limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return DeliveryPage(
            data=[_delivery_out(r) for r in rows],
            next_cursor=_encode_cursor(rows[-1]) if more and rows else None,
        )
