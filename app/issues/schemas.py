"""Issue answers."""

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
