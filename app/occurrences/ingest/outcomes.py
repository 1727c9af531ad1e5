"""What the ingest use case answers per occurrence: typed outcomes, and their HTTP form.

The use case decides :class:`Accepted` (with its outcome name) or :class:`Rejected` (with a kind
saying why, not an HTTP status). ``to_result`` is the HTTP mapping that the routes answer with
and that the Kafka consumer sorts into dead-letter decisions (``IngestResult``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from app.occurrences.ingest.rules import Issue
from app.occurrences.validation import ValidOccurrence


class Rejection(Enum):
    """Why an occurrence was not accepted."""

    INVALID = "invalid"  # the payload breaks a rule (also: unknown type, missing event)
    NOT_FOUND = "not_found"  # the project does not exist
    FORBIDDEN = "forbidden"  # the caller may not use the project


HTTP_STATUS = {Rejection.INVALID: 422, Rejection.NOT_FOUND: 404, Rejection.FORBIDDEN: 403}


@dataclass(frozen=True, slots=True)
class Rejected:
    """A rejected occurrence: kind, stable error code, message, details."""

    kind: Rejection
    code: str
    message: str
    details: Any = None


@dataclass(slots=True)
class Accepted:
    """An accepted occurrence and what became of it.

    ``issue`` is the issue's id, or the batch's issue state when the issue is created in the
    same transaction (its id is known once written), or None.
    """

    occurrence_id: str
    project_id: int
    outcome: str  # created | grouped | regressed | duplicate | pending | dropped | rate_limited
    ignored_fields: list[str]
    issue: Issue | int | None = None
    reason: str | None = None
    noise: dict[str, Any] | None = None

    @property
    def issue_id(self) -> int | None:
        """The issue's id (after the writes)."""
        if isinstance(self.issue, Issue):
            return self.issue.id
        return self.issue


Outcome = Accepted | Rejected


def accepted(
    occ: ValidOccurrence,
    outcome: str,
    issue: Issue | int | None = None,
    *,
    reason: str | None = None,
    noise: dict[str, Any] | None = None,
) -> Accepted:
    """An accepted answer for ``occ``."""
    return Accepted(occ.id, occ.project_id, outcome, occ.ignored_fields, issue, reason, noise)


@dataclass(slots=True)
class IngestResult:
    """The HTTP form of one answer: status, body, and the message's payload type."""

    status_code: int
    body: dict[str, Any]
    payload_type: str = "occurrence"


def error_result(status: int, code: str, message: str, details: Any = None) -> IngestResult:
    """A rejected message in HTTP form."""
    return IngestResult(status, {"error": {"code": code, "message": message, "details": details}})


def to_result(outcome: Outcome) -> IngestResult:
    """An outcome in HTTP form: 202 with the outcome body, or the rejection's 4xx."""
    if isinstance(outcome, Rejected):
        return error_result(
            HTTP_STATUS[outcome.kind], outcome.code, outcome.message, outcome.details
        )
    return IngestResult(
        202,
        {
            "occurrence_id": outcome.occurrence_id,
            "project_id": outcome.project_id,
            "outcome": outcome.outcome,
            "reason": outcome.reason,
            "issue_id": outcome.issue_id,
            "noise": outcome.noise,
            "ignored_fields": list(outcome.ignored_fields),
        },
    )
