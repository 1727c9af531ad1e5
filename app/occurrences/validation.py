"""Validation and normalisation of occurrence payloads (pure: no framework, no database).

Hand-written rather than a Pydantic model so that each item of a batch is judged on its own, the
error names the offending field, and the rules of SPEC §5 read top to bottom in one place.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.issue_types.registry import parse_priority
from app.issues.status import ASSIGNEE_RE, LEVELS
from app.storable import nesting_bound, unstorable_path

UUID_RE = re.compile(
    r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
CULPRIT_MAX = 200
# isinstance() takes these tuples as they are; an ``int | float`` written in the call builds a
# union object on every call (about 90 ns each, twice per occurrence).
_NUMBER = (int, float)
_TIMESTAMP = (int, float, str)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch seconds must be below this (the year 10000), the same range as ISO-8601 times.
MAX_EPOCH_SECONDS = 253402300800

# Keys an occurrence must have, in the order they are checked (the first missing one is named).
REQUIRED_KEYS = (
    "id",
    "project_id",
    "fingerprint",
    "issue_title",
    "subtitle",
    "evidence_display",
    "type",
    "detection_time",
)
# Keys an event must have, in the order they are checked.
EVENT_REQUIRED_KEYS = ("event_id", "project_id", "platform", "timestamp")

# Keys of an event that are stored; everything else is answered as ``ignored_fields``.
KEPT_EVENT_KEYS = (
    "event_id",
    "project_id",
    "environment",
    "release",
    "dist",
    "platform",
    "timestamp",
    "received",
    "tags",
    "contexts",
    "extra",
    "user",
    "request",
    "sdk",
    "server_name",
    "transaction",
    "trace_id",
    "breadcrumbs",
    "stacktrace",
    "modules",
    "debug_meta",
)
_KEPT = frozenset(KEPT_EVENT_KEYS) | {"level", "title"}

# Top-level keys of an occurrence; any other is answered as ``ignored_fields``.
OCCURRENCE_KEYS = frozenset(
    {
        "id",
        "project_id",
        "fingerprint",
        "issue_title",
        "subtitle",
        "culprit",
        "resource_id",
        "evidence_data",
        "evidence_display",
        "type",
        "detection_time",
        "level",
        "priority",
        "initial_issue_priority",
        "assignee",
        "event_id",
        "event",
    }
)
STATUS_CHANGE_HINT = (
    "this body is a status change ({why}), not an occurrence: send it to POST /status-changes, "
    'or to POST /ingest with "payload_type": "status_change"'
)
_STATUS_CHANGE_SIGNS = {
    "payload_type": "payload_type status_change",
    "new_status": "new_status and no issue_title",
}


def status_change_key(raw: dict[str, Any]) -> str | None:
    """The key that shows a status-change body sent where an occurrence was expected, if any.

    ``payload_type: status_change``, or ``new_status`` without ``issue_title`` (an occurrence
    always has a title; a status change never does).
    """
    if raw.get("payload_type") == "status_change":
        return "payload_type"
    if "new_status" in raw and "issue_title" not in raw:
        return "new_status"
    return None


@dataclass(frozen=True)
class Limits:
    """Size limits applied while validating (configurable through the settings)."""

    max_fingerprint_elements: int = 100
    max_fingerprint_length: int = 2048
    max_title_length: int = 8192
    max_depth: int = 32


# The limits unless the settings change them; the OpenAPI document states these.
DEFAULT_LIMITS = Limits()


class PayloadError(ValueError):
    """A broken rule: stable ``code``, the offending ``field`` and a message."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def details(self) -> dict[str, Any] | None:
        """The ``details`` of the error body."""
        return {"field": self.field} if self.field else None


@dataclass(frozen=True)
class ValidOccurrence:
    """An occurrence that passed every payload rule; database checks come later."""

    id: str
    project_id: int
    fingerprint: tuple[str, ...]
    issue_title: str
    subtitle: str
    culprit: str
    resource_id: str | None
    evidence_data: dict[str, Any]
    evidence_display: list[dict[str, Any]]
    type_id: int
    detection_time: datetime
    level: str
    priority: int | None
    assignee: str | None
    event_id: str
    event: dict[str, Any] | None
    ignored_fields: list[str] = field(default_factory=list)


def _build(values: dict[str, Any]) -> ValidOccurrence:
    """``ValidOccurrence(**values)`` given every field, minus the frozen ``__init__``'s cost.

    A frozen dataclass sets each field through ``object.__setattr__``; taking the finished dict
    as the instance's ``__dict__`` gives the same instance several times faster (tests check it
    against the constructor).
    """
    occurrence = object.__new__(ValidOccurrence)
    object.__setattr__(occurrence, "__dict__", values)
    return occurrence


def _invalid(field_name: str, message: str) -> PayloadError:
    return PayloadError("invalid_payload", f"{field_name}: {message}", field_name)


def normalize_uuid(value: Any, field_name: str) -> str:
    """A UUID (dashed or 32 hex) as 32 lowercase hex."""
    # fullmatch: with match(), "$" also matched before a trailing newline, and uuid.UUID then
    # raised a ValueError that no handler turned into a 422.
    if not isinstance(value, str) or not UUID_RE.fullmatch(value):
        raise _invalid(field_name, "must be a UUID (dashed or 32 hex characters)")
    # The pattern admits exactly these two shapes: no uuid.UUID round trip needed.
    if len(value) == 32:
        return value.lower()
    return value.replace("-", "").lower()


def _int(value: Any, field_name: str) -> int:
    if type(value) is int:  # what JSON gives: one check instead of two
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field_name, "must be an integer")
    return value


def _str(value: Any, field_name: str, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise _invalid(field_name, "must be a string")
    if limit is not None and len(value) > limit:
        raise _invalid(field_name, f"must be at most {limit} characters")
    return value


def parse_time(value: Any, field_name: str) -> datetime:
    """Epoch seconds or ISO-8601 as an aware UTC datetime (no zone means UTC)."""
    if isinstance(value, bool):
        raise _invalid(field_name, "must be epoch seconds or an ISO-8601 time")
    if isinstance(value, _NUMBER):
        if not math.isfinite(value) or not (0 <= value < MAX_EPOCH_SECONDS):
            raise _invalid(field_name, "is out of range")
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        # float() never accepts ":", so an ISO time with hours and minutes skips the attempt.
        if ":" not in text:
            try:
                number = float(text)
            except ValueError:
                pass
            else:
                return parse_time(number, field_name)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise _invalid(field_name, "must be epoch seconds or an ISO-8601 time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError:
            raise _invalid(field_name, "is out of range") from None
        # The same range as epoch seconds: windows and counts reach back from it safely.
        if parsed < EPOCH:
            raise _invalid(field_name, "is out of range")
        return parsed
    raise _invalid(field_name, "must be epoch seconds or an ISO-8601 time")


def _depth(value: Any, limit: int, level: int = 0) -> int:
    if level > limit:
        return level
    if isinstance(value, dict):
        return max((_depth(v, limit, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, limit, level + 1) for v in value), default=level + 1)
    return level


def _check_depth(value: Any, field_name: str, limits: Limits, bound: int | None) -> None:
    # ``bound`` (when known) caps the nesting of anything in the payload: no walk needed under it.
    if bound is not None and bound <= limits.max_depth:
        return
    if _depth(value, limits.max_depth) > limits.max_depth:
        raise _invalid(field_name, f"is nested deeper than {limits.max_depth} levels")


def truncate_culprit(culprit: str) -> str:
    """What an issue keeps of a culprit: at most 200 characters (197 and ``...``)."""
    if len(culprit) <= CULPRIT_MAX:
        return culprit
    return culprit[: CULPRIT_MAX - 3] + "..."


def _level(value: Any) -> str:
    if value is None or value == "":
        return "info"
    if not isinstance(value, str) or value.lower() not in LEVELS:
        raise _invalid("level", f"must be one of {', '.join(LEVELS)}")
    return value.lower()


def _priority(raw: dict[str, Any]) -> int | None:
    for key in ("priority", "initial_issue_priority"):
        value = raw.get(key)
        if value is not None:
            try:
                return parse_priority(value)
            except ValueError:
                raise _invalid(key, "must be 25, 50, 75, low, medium or high") from None
    return None


def _evidence_display(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _invalid("evidence_display", "must be a list")
    out = []
    # Field names are only spelled out for an error: most payloads never need them.
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _invalid(
                f"evidence_display.{i}", "must be an object with name, value and important"
            )
        entry_name = item.get("name")
        if not isinstance(entry_name, str):
            raise _invalid(f"evidence_display.{i}.name", "must be a string")
        entry_value = item.get("value")
        if not isinstance(entry_value, str):
            raise _invalid(f"evidence_display.{i}.value", "must be a string")
        important = item.get("important", False)
        if not isinstance(important, bool):
            raise _invalid(f"evidence_display.{i}.important", "must be a boolean")
        out.append({"name": entry_name, "value": entry_value, "important": important})
    return out


def _tags(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(v, str) and v is not None:
                raise _invalid(f"event.tags.{k}", "must be a string")
        return value
    if isinstance(value, list):
        for i, pair in enumerate(value):
            if (
                not isinstance(pair, list | tuple)
                or len(pair) != 2
                or not all(isinstance(p, str) for p in pair)
            ):
                raise _invalid(f"event.tags.{i}", "must be a [key, value] pair of strings")
        return value
    raise _invalid("event.tags", "must be an object of strings or a list of pairs")


def _event(raw_event: Any, limits: Limits, bound: int | None) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(raw_event, dict):
        raise _invalid("event", "must be an object")
    if "event_id" not in raw_event:
        raise _invalid("event.event_id", "is required")
    event_id = normalize_uuid(raw_event.get("event_id"), "event.event_id")
    if "project_id" not in raw_event:
        raise _invalid("event.project_id", "is required")
    project_id = _int(raw_event.get("project_id"), "event.project_id")
    if "platform" not in raw_event:
        raise _invalid("event.platform", "is required")
    _str(raw_event.get("platform"), "event.platform")
    if "timestamp" not in raw_event:
        raise _invalid("event.timestamp", "is required")
    ts = raw_event.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, _TIMESTAMP):
        raise _invalid("event.timestamp", "must be a number or a string")
    _check_depth(raw_event, "event", limits, bound)
    ignored: list[str]
    if _KEPT.issuperset(raw_event):
        # The usual event, every key one that is kept (``level`` and ``title`` are set by the
        # caller): one copy in C instead of a look-up per kept key and a filter for the rest.
        kept = dict(raw_event)
        ignored = []
    else:
        kept = {k: raw_event[k] for k in KEPT_EVENT_KEYS if k in raw_event}
        ignored = [k for k in raw_event if k not in _KEPT]
    kept["event_id"] = event_id
    kept["project_id"] = project_id
    if "tags" in raw_event:
        kept["tags"] = _tags(raw_event.get("tags"))
    return kept, ignored


def validate_occurrence(raw: Any, limits: Limits = Limits()) -> ValidOccurrence:  # noqa: B008
    """Check one occurrence payload (SPEC §5); raise ``PayloadError`` at the first broken rule."""
    if not isinstance(raw, dict):
        raise PayloadError("invalid_payload", "occurrence must be a JSON object", None)
    status_key = status_change_key(raw)
    if status_key is not None:
        why = _STATUS_CHANGE_SIGNS[status_key]
        raise PayloadError("invalid_payload", STATUS_CHANGE_HINT.format(why=why), status_key)
    # Asked no deeper than the depth limit needs: what sits inside ``raw`` nests one level less.
    nesting = nesting_bound(raw, limits.max_depth + 1)
    if nesting is None:
        bad = unstorable_path(raw)
        if bad is not None:
            raise _invalid(bad, "must not contain NUL characters or integers beyond 64 bits")
    # What sits inside ``raw`` nests one level less than ``raw`` itself.
    inner = None if nesting is None else nesting - 1
    for required in REQUIRED_KEYS:
        if required not in raw:
            raise _invalid(required, "is required")
    occ_id = normalize_uuid(raw["id"], "id")
    project_id = _int(raw["project_id"], "project_id")
    fingerprint = raw["fingerprint"]
    if not isinstance(fingerprint, list) or not fingerprint:
        raise _invalid("fingerprint", "must be a non-empty list of non-empty strings")
    if len(fingerprint) > limits.max_fingerprint_elements:
        raise _invalid(
            "fingerprint", f"must have at most {limits.max_fingerprint_elements} elements"
        )
    for i, element in enumerate(fingerprint):
        if not isinstance(element, str) or not element:
            raise _invalid(f"fingerprint.{i}", "must be a non-empty string")
        if len(element) > limits.max_fingerprint_length:
            raise _invalid(
                f"fingerprint.{i}", f"must be at most {limits.max_fingerprint_length} characters"
            )
    title = _str(raw["issue_title"], "issue_title", limits.max_title_length)
    subtitle = _str(raw["subtitle"], "subtitle", limits.max_title_length)
    culprit = raw.get("culprit")
    culprit = "" if culprit is None else _str(culprit, "culprit", limits.max_title_length)
    resource_id = raw.get("resource_id")
    if resource_id is not None:
        resource_id = _str(resource_id, "resource_id", limits.max_title_length)
    evidence_data = raw.get("evidence_data")
    if evidence_data is None:
        evidence_data = {}
    if not isinstance(evidence_data, dict):
        raise _invalid("evidence_data", "must be an object")
    _check_depth(evidence_data, "evidence_data", limits, inner)
    evidence_display = _evidence_display(raw["evidence_display"])
    type_id = _int(raw["type"], "type")
    detection_time = parse_time(raw["detection_time"], "detection_time")
    level = _level(raw.get("level"))
    priority = _priority(raw)
    assignee = raw.get("assignee")
    if not (isinstance(assignee, str) and ASSIGNEE_RE.fullmatch(assignee)):
        assignee = None
    raw_event = raw.get("event")
    top_event_id = raw.get("event_id")
    if raw_event is None and top_event_id is None:
        raise _invalid("event", "either event or event_id is required")
    if top_event_id is not None:
        top_event_id = normalize_uuid(top_event_id, "event_id")
    event: dict[str, Any] | None = None
    ignored = [k for k in raw if k not in OCCURRENCE_KEYS]
    if raw_event is not None:
        event, event_ignored = _event(raw_event, limits, inner)
        ignored += event_ignored
        if event["project_id"] != project_id:
            raise PayloadError(
                "event_project_mismatch",
                "event.project_id must equal project_id",
                "event.project_id",
            )
        if top_event_id is not None and top_event_id != event["event_id"]:
            raise PayloadError(
                "event_id_mismatch", "event_id must equal event.event_id", "event_id"
            )
        event["level"] = level
        event["title"] = title
        event_id = event["event_id"]
    else:
        assert top_event_id is not None
        event_id = top_event_id
    return _build(
        {
            "id": occ_id,
            "project_id": project_id,
            "fingerprint": tuple(fingerprint),
            "issue_title": title,
            "subtitle": subtitle,
            "culprit": culprit,
            "resource_id": resource_id,
            "evidence_data": evidence_data,
            "evidence_display": evidence_display,
            "type_id": type_id,
            "detection_time": detection_time,
            "level": level,
            "priority": priority,
            "assignee": assignee,
            "event_id": event_id,
            "event": event,
            "ignored_fields": ignored,
        }
    )
