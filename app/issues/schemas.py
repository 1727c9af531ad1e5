"""Issue answers: the issue and its activity."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EvidenceOut(BaseModel):
    """One piece of evidence shown with an occurrence."""

    name: str
    value: str
    important: bool


class LatestOccurrenceOut(BaseModel):
    """The newest occurrence of an issue (by detection time) with its evidence."""

    id: str = Field(description="Occurrence id (32 lowercase hex).")
    event_id: str = Field(description="The event the occurrence refers to.")
    detection_time: datetime
    received_at: datetime
    level: str
    resource_id: str | None
    evidence_data: dict[str, Any]
    evidence_display: list[EvidenceOut]
    important_evidence: EvidenceOut | None = Field(
        description="The first evidence entry marked important (shown where space is short)."
    )


class IssueOut(BaseModel):
    """An issue as the API shows it."""

    id: int
    short_id: str = Field(description="`<PROJECT-SLUG>-<n>`, numbered per project.")
    project_id: int
    type_id: int
    type: str = Field(description="Issue type slug.")
    category: str = Field(description="Category slug.")
    category_id: int
    title: str
    subtitle: str
    culprit: str
    level: str
    status: str = Field(description="`unresolved`, `resolved` or `ignored`.")
    substatus: str | None
    priority: str = Field(description="`low`, `medium` or `high`.")
    priority_locked: bool = Field(description="Set by a person; automatic changes leave it alone.")
    first_seen: datetime
    last_seen: datetime
    times_seen: int
    resolved_at: datetime | None
    assignee: str | None
    ignore_until: dict[str, Any] | None = Field(
        description="Conditions of `archived_until_condition_met`."
    )
    latest_occurrence: LatestOccurrenceOut | None


class IssuePage(BaseModel):
    """One page of the issue stream."""

    data: list[IssueOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class ActivityOut(BaseModel):
    """One thing that happened to an issue."""

    id: int = Field(description="Activity id (increasing).")
    issue_id: int = Field(description="The issue it happened to.")
    type: str = Field(
        description="`set_resolved`, `set_resolved_by_age`, `set_ignored`, `set_escalating`, "
        "`set_regression`, `auto_set_ongoing`, `set_unresolved`, `set_priority`, …"
    )
    data: dict[str, Any] = Field(description="Details of the change (e.g. `activity_data`).")
    actor: str | None = Field(description="Who made the change; null for automatic changes.")
    created_at: datetime = Field(description="When it happened.")
