"""Occurrence payloads and answers, as the API documents them.

Validation itself is done item by item in ``validation.py`` so that one bad item of a batch does
not reject the others; these models describe the same contract for the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.config import Settings
from app.occurrences.validation import (
    CULPRIT_MAX,
    DEFAULT_LIMITS,
    KEPT_EVENT_KEYS,
    MAX_EPOCH_SECONDS,
    UUID_RE,
)

_TEXT_MAX = DEFAULT_LIMITS.max_title_length
# Two literals, not one: pydantic orders the values of a mixed-type literal by a set of types,
# which differs from run to run.
_Priority = Literal[25, 50, 75] | Literal["low", "medium", "high"]
_UUID = UUID_RE.pattern
# An ISO-8601 time or a number given as text; which forms parse is Python's ``fromisoformat``.
_TIME_TEXT = "ISO-8601 (no zone means UTC; `Z` allowed) or epoch seconds as text"


class EvidenceIn(BaseModel):
    """One piece of evidence to show with the occurrence."""

    name: str = Field(description="Label of the evidence.")
    value: str = Field(description="Value of the evidence.")
    important: bool = Field(
        False, description="The first important entry is shown where space is short."
    )


def _document_kept_keys(schema: dict[str, Any]) -> None:
    """List every kept event key (``KEPT_EVENT_KEYS``), not only the checked ones."""
    properties = schema.setdefault("properties", {})
    for key in KEPT_EVENT_KEYS:
        described = "Stored as sent; the arrival time if missing." if key == "received" else None
        properties.setdefault(key, {"description": described or "Stored as sent."})


class EventIn(BaseModel):
    """The event an occurrence refers to; the listed keys are stored, others are ignored."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_document_kept_keys)

    event_id: str = Field(pattern=_UUID, description="UUID, dashed or 32 hex.")
    project_id: int = Field(description="Must equal the occurrence's project_id.")
    platform: str = Field(description="SDK platform, e.g. `python`.")
    timestamp: float | str = Field(description="Epoch seconds or ISO-8601.")
    tags: (
        dict[str, str | None] | list[Annotated[list[str], Field(min_length=2, max_length=2)]] | None
    ) = Field(None, description="Object of strings, or list of [key, value] pairs.")


def _event_or_event_id(schema: dict[str, Any]) -> None:
    """State that ``event`` or ``event_id`` must be given (and not null)."""
    schema["anyOf"] = [
        {"required": [key], "properties": {key: {"type": kind}}}
        for key, kind in (("event", "object"), ("event_id", "string"))
    ]


class OccurrenceIn(BaseModel):
    """One detection sent by a detector.

    Either `event` or `event_id` is required. Not stated by this schema: `event.project_id`
    must equal `project_id` and a top-level `event_id` must equal `event.event_id`; no text
    may hold a NUL character and no integer may need more than 64 bits; `evidence_data` and
    `event` nest at most 32 levels deep; `payload_type: status_change` marks a status change.
    """

    model_config = ConfigDict(json_schema_extra=_event_or_event_id)

    id: str = Field(
        pattern=_UUID, description="UUID, dashed or 32 hex; stored as 32 lowercase hex."
    )
    project_id: int = Field(description="Project the occurrence belongs to.")
    fingerprint: list[
        Annotated[str, Field(min_length=1, max_length=DEFAULT_LIMITS.max_fingerprint_length)]
    ] = Field(
        min_length=1,
        max_length=DEFAULT_LIMITS.max_fingerprint_elements,
        description="Non-empty list of non-empty strings; grouping key.",
    )
    issue_title: str = Field(max_length=_TEXT_MAX, description="Title of the issue.")
    subtitle: str = Field(max_length=_TEXT_MAX, description="Subtitle of the issue.")
    culprit: str | None = Field(
        "",
        max_length=_TEXT_MAX,
        description=f"Where it happened; the issue keeps {CULPRIT_MAX} characters. "
        "Null means empty.",
    )
    resource_id: str | None = Field(
        None, max_length=_TEXT_MAX, description="Optional resource identifier."
    )
    evidence_data: dict[str, Any] | None = Field(
        default_factory=dict, description="Free-form evidence; null means empty."
    )
    evidence_display: list[EvidenceIn] = Field(description="Evidence to show; may be empty.")
    type: int = Field(description="Registered issue type id.")
    detection_time: Annotated[float, Field(ge=0, lt=MAX_EPOCH_SECONDS)] | str = Field(
        description=f"Epoch seconds, or {_TIME_TEXT}; not before 1970."
    )
    level: Literal["debug", "info", "warning", "error", "fatal"] | None = Field(
        None, description='Defaults to `info` (also for ""); any letter case.'
    )
    priority: _Priority | None = Field(
        None,
        description='25/50/75 or low/medium/high (any letter case, spaces around and "25" '
        "taken too).",
    )
    initial_issue_priority: _Priority | None = Field(
        None, description="Older name of `priority` (which wins)."
    )
    assignee: str | None = Field(None, description="`user:<id>` or `team:<id>`; else ignored.")
    event_id: str | None = Field(
        None,
        pattern=_UUID,
        description="Event id; with no `event`, it must name an event already stored.",
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


_MAX_BATCH = Settings.model_fields["max_batch_items"].default


class BatchIn(BaseModel):
    """Up to ``max_batch_items`` occurrences, each judged on its own."""

    # The documented limit is the setting's default (the router enforces the configured one).
    model_config = ConfigDict(
        json_schema_extra={
            "description": f"Up to {_MAX_BATCH:,} occurrences, each judged on its own."
        }
    )

    occurrences: list[OccurrenceIn]


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
