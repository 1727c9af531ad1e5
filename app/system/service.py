"""Readiness checks."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from app.db import Database
from app.migrations import head_revision


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
