"""Triage payloads and answers: issue updates, activity pages, forecasts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.issues.schemas import ActivityOut
from app.issues.status import ASSIGNEE_PATTERN
from app.schemas import StorableIn, UtcDatetime


class ActivityPage(BaseModel):
    """One page of an issue's activity, newest first."""

    data: list[ActivityOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class IgnoreUntilIn(StorableIn):
    """Conditions of `archived_until_condition_met`: a count in a window, or a time."""

    model_config = ConfigDict(extra="forbid")

    count: int | None = Field(
        None,
        ge=1,
        le=10**12,
        description="More than this many occurrences within the window → escalating.",
    )
    window_seconds: int | None = Field(
        None, ge=1, le=365 * 86400, description="Length of the counting window, in seconds."
    )
    until: UtcDatetime | None = Field(
        None, description="After this time the next occurrence makes the issue ongoing."
    )

    @model_validator(mode="after")
    def _one_condition(self) -> IgnoreUntilIn:
        counted = self.count is not None or self.window_seconds is not None
        if counted and (self.count is None or self.window_seconds is None):
            raise ValueError("count and window_seconds go together")
        if counted == (self.until is not None):
            raise ValueError("give either {count, window_seconds} or {until}")
        return self


class IssueUpdateIn(StorableIn):
    """What a person changes on an issue; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    status: int | str | None = Field(
        None, description="`unresolved`, `resolved` or `ignored` (or 0, 1, 2)."
    )
    substatus: int | str | None = Field(
        None, description="Substatus by name or number; needed for unresolved and ignored."
    )
    priority: int | str | None = Field(
        None,
        description="`low`, `medium`, `high` (or 25, 50, 75); locks it against automatic changes.",
    )
    ignore_until: IgnoreUntilIn | None = Field(
        None,
        description="Archive until a condition is met (implies `ignored` / "
        "`archived_until_condition_met`).",
    )
    assignee: str | None = Field(
        None,
        pattern=ASSIGNEE_PATTERN,
        description="Who owns the issue: `user:<id>` or `team:<id>`; null unassigns. "
        "Recorded as a `set_assignee` activity.",
    )


class ForecastOut(BaseModel):
    """The escalation forecast of an issue."""

    issue_id: int = Field(description="The issue.")
    computed_at: datetime | None = Field(description="When it was computed; null if never.")
    start_date: str | None = Field(description="Day 0 of the ceilings (`YYYY-MM-DD`, UTC).")
    ceilings: list[int] = Field(
        description="14 daily ceilings; empty when the issue has no forecast."
    )
