"""The delivery worker: sends due outbox rows, outside any database transaction."""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from app.context import AppContext
from app.metrics import WEBHOOK_DELIVERIES
from app.models import Webhook, WebhookDelivery
from app.notifications.egress import TargetUnresolvable, check_target, policy_of, post
from app.notifications.rules import gives_up, retry_delay
from app.notifications.signing import sign

log = logging.getLogger(__name__)

USER_AGENT = "issue-platform-webhooks/0.1"
SENDERS = 8
LEASE_MARGIN_SECONDS = 30.0
MAX_ERROR_CHARS = 500
# Says no more than this, so the delivery log cannot map which internal addresses answer.
REFUSED_TARGET = "refused target: the receiver is not on a public address"
UNRESOLVABLE_TARGET = "the receiver's host name does not resolve"


@dataclass(frozen=True)
class _Claimed:
    """A delivery taken from the outbox for one attempt."""

    id: str
    event: str
    body: str
    url: str
    secret: str
    created_at: datetime
    attempts: int


@dataclass(frozen=True)
class _Outcome:
    """What one attempt gave."""

    id: str
    created_at: datetime
    attempts: int
    status_code: int | None
    error: str | None
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _lease(ctx: AppContext, count: int) -> timedelta:
    """How long claimed rows stay invisible to other workers: longer than sending them takes."""
    rounds = math.ceil(count / SENDERS)
    return timedelta(seconds=rounds * ctx.settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)


def _anything_due(ctx: AppContext, now: datetime) -> bool:
    with ctx.db.read() as session:
        stmt = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
            .limit(1)
        )
        return session.scalar(stmt) is not None


def _claim(ctx: AppContext, *, now: datetime, limit: int) -> list[_Claimed]:
    """Take due rows by moving their next attempt past a lease; commit before any HTTP."""
    if not _anything_due(ctx, now):
        return []
    with ctx.db.write() as session:
        stmt = (
            select(
                WebhookDelivery.id,
                WebhookDelivery.event,
                WebhookDelivery.body,
                WebhookDelivery.created_at,
                WebhookDelivery.attempts,
                Webhook.url,
                Webhook.secret,
            )
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            # PostgreSQL: concurrent workers skip each other's rows. SQLite ignores the clause;
            # its write transaction (BEGIN IMMEDIATE) serializes claims instead.
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
        claimed = [
            _Claimed(
                id=r.id,
                event=r.event,
                body=r.body,
                url=r.url,
                secret=r.secret,
                created_at=r.created_at,
                attempts=r.attempts,
            )
            for r in session.execute(stmt)
        ]
        if claimed:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([c.id for c in claimed]))
                .values(next_attempt_at=now + _lease(ctx, len(claimed)))
            )
        session.commit()
    return claimed


def _send(client: httpx.Client, ctx: AppContext, item: _Claimed) -> _Outcome:
    """Judge the receiver's addresses again, then POST one body to a judged one."""
    try:
        target = check_target(item.url, policy_of(ctx.settings))
    except ValueError:  # UrlNotAllowed, or a stored host that no longer normalises
        return _Outcome(item.id, item.created_at, item.attempts, None, REFUSED_TARGET, True)
    except TargetUnresolvable:
        return _Outcome(item.id, item.created_at, item.attempts, None, UNRESOLVABLE_TARGET)
    raw = item.body.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Issue-Platform-Event": item.event,
        "X-Issue-Platform-Delivery": item.id,
        "X-Issue-Platform-Timestamp": str(int(ctx.now().timestamp())),
        "X-Issue-Platform-Signature": sign(item.secret, raw),
    }
    try:
        code = post(client, item.url, target, content=raw, headers=headers)
    except Exception as exc:  # any failure to talk to the receiver is retried
        reason = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        return _Outcome(item.id, item.created_at, item.attempts, None, reason)
    error = None if 200 <= code < 300 else f"HTTP {code}"
    return _Outcome(item.id, item.created_at, item.attempts, code, error)


def _record(ctx: AppContext, outcomes: list[_Outcome]) -> dict[str, int]:
    """Store the attempts' results in one short transaction."""
    now = ctx.now()
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    with ctx.db.write() as session:
        for out in outcomes:
            values: dict[str, Any] = {
                "attempts": WebhookDelivery.attempts + 1,
                "last_status_code": out.status_code,
                "last_error": out.error,
            }
            if out.ok:
                result = "delivered"
                values.update(state="delivered", delivered_at=now)
            elif out.refused or gives_up(now - out.created_at):
                result = "failed"
                values.update(state="failed")
            else:
                result = "retry"
                values.update(next_attempt_at=now + retry_delay(out.attempts + 1))
            # A row already settled (or deleted with its webhook) is left alone.
            done = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == out.id, WebhookDelivery.state == "pending")
                .values(**values)
            )
            if done.rowcount:  # type: ignore[attr-defined]
                counts[result] += 1
        session.commit()
    for result, n in counts.items():
        if n:
            WEBHOOK_DELIVERIES.labels(result=result).inc(n)
    return counts


def deliver_due(ctx: AppContext, *, limit: int = 100) -> dict[str, int]:
    """Send every due delivery (at most ``limit``) once; returns counts by result."""
    claimed = _claim(ctx, now=ctx.now(), limit=limit)
    if not claimed:
        return {"claimed": 0, "delivered": 0, "retry": 0, "failed": 0}
    timeout = ctx.settings.webhook_timeout_seconds
    with (
        httpx.Client(timeout=timeout, follow_redirects=False) as client,
        ThreadPoolExecutor(max_workers=min(SENDERS, len(claimed))) as pool,
    ):
        outcomes = list(pool.map(lambda item: _send(client, ctx, item), claimed))
    counts = _record(ctx, outcomes)
    if counts["failed"]:
        log.warning("%d webhook deliveries failed for good", counts["failed"])
    return {"claimed": len(claimed), **counts}


def run_delivery(ctx: AppContext) -> dict[str, Any]:
    """One delivery pass as a periodic job; its counts."""
    return dict(deliver_due(ctx))
