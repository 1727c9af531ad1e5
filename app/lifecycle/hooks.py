"""Lifecycle rules the ingest path applies to issues that receive occurrences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.context import AppContext
from app.models import Group


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
    return None
