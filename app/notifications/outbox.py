"""Writing notifications to the outbox, in the transaction of the change they report."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.context import AppContext
from app.models import Group

EVENTS = (
    "issue.created",
    "issue.regressed",
    "issue.escalating",
    "issue.resolved",
    "issue.ignored",
    "issue.unresolved",
)


def enqueue(session: Session, ctx: AppContext, group: Group, event: str, *, now: datetime) -> int:
    """Queue ``event`` for every webhook of the issue's project subscribed to it.

    Returns the number of deliveries queued. Respects the type's post-process flag, and an
    issue created while that flag was off never sends ``issue.created``.
    """
    # Filled in by the notifications package (webhook registration and delivery).
    return 0
