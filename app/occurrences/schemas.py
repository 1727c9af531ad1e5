"""Occurrence payloads and answers, as the API documents them.

Validation itself is done item by item in ``validation.py`` so that one bad item of a batch does
not reject the others; these models describe the same contract for the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.errors import ErrorDetail


class EvidenceIn(BaseModel):
    """One piece of evidence to show with the occurrence."""

    name: str = Field(description="Label of the evidence.")
    value: str = Field(description="Value of the evidence.")
    important: bool = Field(description="The first important entry is shown where space is short.")


class EventIn(BaseModel):
    """The event an occurrence refers to; only the documented keys are stored."""

    model_config = {"extra": "allow"}

    event_id: str = Field(description="UUID, dashed or 32 hex.")
    project_id: int = Field(description="Must equal the occurrence's project_id.")
    platform: str = Field(description="SDK platform, e.g. `python`.")
    timestamp: float | str = Field(description="Epoch seconds or ISO-8601.")
    tags: dict[str, str] | list[list[str]] | None = Field(
        None, description="Object of strings, or list of [key, value] pairs."
    )


class OccurrenceIn(BaseModel):
    """One detection sent by a detector."""

    id: str = Field(description="UUID, dashed or 32 hex; stored as 32 lowercase hex.")
    project_id: int = Field(description="Project the occurrence belongs to.")
    fingerprint: list[str] = Field(
        min_length=1, description="Non-empty list of non-empty strings; grouping key."
    )
    issue_title: str = Field(description="Title of the issue.")
    subtitle: str = Field(description="Subtitle of the issue.")
    culprit: str = Field("", description="Where it happened; the issue keeps 200 characters.")
    resource_id: str | None = Field(None, description="Optional resource identifier.")
    evidence_data: dict[str, Any] = Field(default_factory=dict, description="Free-form evidence.")
    evidence_display: list[EvidenceIn] = Field(description="Evidence to show; may be empty.")
    type: int = Field(description="Registered issue type id.")
    detection_time: float | datetime = Field(
        description="Epoch seconds or ISO-8601 (UTC if no zone)."
    )
    level: Literal["debug", "info", "warning", "error", "fatal"] | None = Field(
        None, description="Defaults to `info`."
    )
    priority: int | str | None = Field(None, description="25/50/75 or low/medium/high.")
    initial_issue_priority: int | str | None = Field(
        None, description="Older name of `priority` (which wins)."
    )
    assignee: str | None = Field(None, description="`user:<id>` or `team:<id>`; else ignored.")
    event_id: str | None = Field(
        None, description="Event id; with no `event`, it must name an event already stored."
    )
    event: EventIn | None = Field(None, description="The event, stored with the kept keys.")


class NoiseOut(BaseModel):
    """State of the noise window an occurrence is waiting in."""

    count: int
    threshold: int
    window_ends_at: datetime


class OccurrenceAccepted(BaseModel):
    """The answer to an accepted occurrence (sent after the commit)."""

    occurrence_id: str
    project_id: int
    outcome: Literal[
        "created", "grouped", "regressed", "pending", "rate_limited", "dropped", "duplicate"
    ]
    reason: str | None = Field(description="`ingest_disabled` or `type_mismatch` when dropped.")
    issue_id: int | None
    noise: NoiseOut | None
    ignored_fields: list[str] = Field(
        description="Keys that were not stored: unknown top-level keys of the occurrence, in "
        "the order sent, then the event's keys outside the kept list."
    )


class BatchIn(BaseModel):
    """Up to 1,000 occurrences, each judged on its own."""

    occurrences: list[OccurrenceIn]


class BatchItemError(BaseModel):
    """A rejected batch item."""

    status: int
    code: str
    message: str
    details: Any = None


class BatchOut(BaseModel):
    """One result per item, in order: an accepted answer, or an error."""

    results: list[dict[str, Any]]


class StoredEvidence(BaseModel):
    """Evidence as stored."""

    name: str
    value: str
    important: bool


class OccurrenceOut(BaseModel):
    """An accepted occurrence as stored."""

    id: str
    project_id: int
    issue_id: int | None = Field(description="Null while waiting below a noise threshold.")
    pending: bool
    type_id: int
    type: str | None
    event_id: str
    fingerprint: list[str]
    issue_title: str
    subtitle: str
    culprit: str
    resource_id: str | None
    evidence_data: dict[str, Any]
    evidence_display: list[StoredEvidence]
    detection_time: datetime
    received_at: datetime
    level: str
    priority: str
    assignee: str | None
    event: dict[str, Any] | None = Field(description="The stored event, if any.")


class OccurrencePage(BaseModel):
    """A page of occurrences, newest first."""

    data: list[OccurrenceOut]
    next_cursor: str | None


class PendingOut(BaseModel):
    """A fingerprint waiting below its type's noise threshold."""

    project_id: int
    type_id: int
    type: str | None
    fingerprint: str = Field(description="The first fingerprint element.")
    hash: str
    count: int
    threshold: int
    window_started_at: datetime
    window_ends_at: datetime


class PendingPage(BaseModel):
    """Pending noise windows."""

    data: list[PendingOut]


ERROR_MODELS: list[type[BaseModel]] = [ErrorDetail]
