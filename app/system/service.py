"""Readiness checks."""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine, case, func, inspect, select, text
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


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database (None: not migrated at all).

    Read directly rather than through Alembic's MigrationContext, which logs two INFO lines
    each time (every readiness probe).
    """
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return str(revision) if revision is not None else None


def readiness(db: Database, *, started: bool = True) -> ReadyState:
    """Whether the database answers, is at the schema head and this process has started."""
    head = head_revision()
    try:
        current = current_revision(db.engine)
    except SQLAlchemyError:
        return ReadyState(status="unavailable", database="unreachable", head=head)
    if current != head:
        return ReadyState(status="unavailable", database="behind", revision=current, head=head)
    if not started:
        # At head, but this process's start-up (defaults, registry) has not finished yet.
        return ReadyState(status="unavailable", database="starting", revision=current, head=head)
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
