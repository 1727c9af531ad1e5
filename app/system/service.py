"""Readiness checks."""

from __future__ import annotations

import logging
from datetime import datetime

from alembic.runtime.migration import MigrationContext
from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from app.db import Database
from app.metrics import DATABASE_UP, OUTBOX_DUE, OUTBOX_PENDING
from app.migrations import head_revision
from app.models import WebhookDelivery

log = logging.getLogger(__name__)


class ReadyState(BaseModel):
    """Outcome of the readiness check."""

    status: str
    database: str
    revision: str | None = None
    head: str | None = None


def readiness(db: Database) -> ReadyState:
    """Whether the database answers and is at the schema head."""
    head = head_revision()
    try:
        with db.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError:
        return ReadyState(status="unavailable", database="unreachable", head=head)
    if current != head:
        return ReadyState(status="unavailable", database="behind", revision=current, head=head)
    return ReadyState(status="ok", database="ok", revision=current, head=head)


def refresh_scrape_gauges(db: Database, *, now: datetime) -> None:
    """Read the gauges that live in the database (webhook outbox depth) for one scrape.

    One count over the ``(state, next_attempt_at)`` index; when the database does not answer,
    ``issue_platform_database_up`` drops to 0 and the outbox gauges keep their last value.
    """
    stmt = select(
        func.count(),
        func.coalesce(func.sum(case((WebhookDelivery.next_attempt_at <= now, 1), else_=0)), 0),
    ).where(WebhookDelivery.state == "pending")
    try:
        with db.read() as session:
            pending, due = session.execute(stmt).one()
    except SQLAlchemyError as exc:
        log.warning("metrics: database unavailable (%s)", type(exc).__name__)
        DATABASE_UP.set(0)
        return
    DATABASE_UP.set(1)
    OUTBOX_PENDING.set(pending)
    OUTBOX_DUE.set(due)
