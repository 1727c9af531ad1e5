"""The documented occurrence body (openapi.json) and the validator that runs agree (SPEC §5).

The request body of ``POST /occurrences`` is described by ``OccurrenceIn`` (schemas.py) and
judged by ``validate_occurrence`` (validation.py). Every limit, pattern, enum and key list of the
schema is read from validation.py or checked against it here (tests/test_openapi.py keeps the
committed document equal to the served one); bodies generated from the committed
document must be accepted, and a body with one value changed must be accepted exactly when the
schema still holds.

What JSON Schema does not state, and the tests therefore apply themselves (see ``beyond_schema``
and ``lenient``):

- ``event.project_id`` must equal ``project_id``; a top-level ``event_id`` must equal
  ``event.event_id`` (as UUIDs: dashes and letter case aside);
- no text may hold a NUL character, no integer may need more than 64 bits, and ``evidence_data``
  and ``event`` nest at most ``max_depth`` levels (the schema states no depth);
- ``detection_time`` as text must be a time Python's ``fromisoformat`` reads (or a number), not
  before 1970: the schema only says "string";
- ``payload_type: status_change`` marks a status change sent to the wrong route.

Where the validator is more lenient than the schema on purpose: ``level`` in any letter case, or
""; ``priority`` in any letter case, with spaces around, or as the text "25"; ``assignee`` of any
value (ignored unless ``user:``/``team:``); ``initial_issue_priority`` unread when ``priority``
is given; an integral float (``1.0``) is an integer to JSON Schema but not to the validator.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Settings
from app.issue_types.registry import PRIORITY_NAMES, PRIORITY_VALUES
from app.issues.status import LEVELS
from app.occurrences.validation import (
    DEFAULT_LIMITS,
    EVENT_REQUIRED_KEYS,
    KEPT_EVENT_KEYS,
    MAX_EPOCH_SECONDS,
    OCCURRENCE_KEYS,
    REQUIRED_KEYS,
    UUID_RE,
    PayloadError,
    ValidOccurrence,
    validate_occurrence,
)
from app.storable import unstorable
from tests.builders import occurrence

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = json.loads((ROOT / "openapi.json").read_text())
COMPONENTS = DOCUMENT["components"]["schemas"]
OCCURRENCE = COMPONENTS["OccurrenceIn"]
EVENT = COMPONENTS["EventIn"]
IS_DOCUMENTED = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/OccurrenceIn", "components": DOCUMENT["components"]}
)
BODIES = schemathesis.openapi.from_dict(DOCUMENT)["/occurrences"]["POST"].as_strategy()
CONTRACT = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def branches(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a property (``anyOf``), without the null one."""
    return [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]


def judge(raw: Any) -> ValidOccurrence | PayloadError:
    try:
        return validate_occurrence(raw)
    except PayloadError as exc:
        return exc


# -- the schema is built from the validator's constants -------------------------------------------


def test_keys_and_required_keys_are_the_validators() -> None:
    assert set(OCCURRENCE["properties"]) == OCCURRENCE_KEYS
    assert OCCURRENCE["required"] == list(REQUIRED_KEYS)
    assert set(EVENT["properties"]) == set(KEPT_EVENT_KEYS)
    assert EVENT["required"] == list(EVENT_REQUIRED_KEYS)
    assert EVENT["additionalProperties"] is True  # other keys are answered as ignored_fields
    assert "additionalProperties" not in OCCURRENCE
    assert [b["required"] for b in OCCURRENCE["anyOf"]] == [["event"], ["event_id"]]


def test_enums_are_the_validators() -> None:
    [level] = branches(OCCURRENCE["properties"]["level"])
    assert level["enum"] == list(LEVELS)
    for key in ("priority", "initial_issue_priority"):
        numbers, names = branches(OCCURRENCE["properties"][key])
        assert numbers == {"type": "integer", "enum": sorted(PRIORITY_NAMES)}
        assert set(names["enum"]) == set(PRIORITY_VALUES) and names["type"] == "string"


def test_limits_and_patterns_are_the_validators() -> None:
    props = OCCURRENCE["properties"]
    fingerprint = props["fingerprint"]
    assert fingerprint["minItems"] == 1
    assert fingerprint["maxItems"] == DEFAULT_LIMITS.max_fingerprint_elements
    assert fingerprint["items"]["minLength"] == 1
    assert fingerprint["items"]["maxLength"] == DEFAULT_LIMITS.max_fingerprint_length
    for key in ("issue_title", "subtitle", "culprit", "resource_id"):
        [text] = branches(props[key])
        assert text["maxLength"] == DEFAULT_LIMITS.max_title_length, key
    for prop in (props["id"], *branches(props["event_id"]), EVENT["properties"]["event_id"]):
        assert prop["pattern"] == UUID_RE.pattern
    number, text = branches(props["detection_time"])
    assert number == {"type": "number", "minimum": 0, "exclusiveMaximum": MAX_EPOCH_SECONDS}
    assert text["type"] == "string"
    assert f"nest at most {DEFAULT_LIMITS.max_depth} levels" in OCCURRENCE["description"]


def test_the_documented_limits_are_the_default_settings() -> None:
    fields = Settings.model_fields
    assert fields["max_fingerprint_elements"].default == DEFAULT_LIMITS.max_fingerprint_elements
    assert fields["max_fingerprint_length"].default == DEFAULT_LIMITS.max_fingerprint_length
    assert fields["max_title_length"].default == DEFAULT_LIMITS.max_title_length
    assert fields["max_nesting_depth"].default == DEFAULT_LIMITS.max_depth


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_each_required_key_is_required(key: str) -> None:
    raw = occurrence()
    del raw[key]
    error = judge(raw)
    assert isinstance(error, PayloadError) and error.message == f"{key}: is required"


@pytest.mark.parametrize("key", EVENT_REQUIRED_KEYS)
def test_each_required_event_key_is_required(key: str) -> None:
    raw = occurrence()
    del raw["event"][key]
    error = judge(raw)
    assert isinstance(error, PayloadError) and error.message == f"event.{key}: is required"


# -- generated bodies ------------------------------------------------------------------------------


def conform(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (schema-valid) made to follow the rules the schema cannot state."""
    body = copy.deepcopy(body)
    body.pop("payload_type", None)
    if isinstance(body["detection_time"], str):
        body["detection_time"] = "2026-11-02T11:00:00Z"
    event = body.get("event")
    if isinstance(event, dict):
        event["project_id"] = body["project_id"]
        if body.get("event_id") is not None:
            body["event_id"] = event["event_id"]
    return body


def beyond_schema(body: dict[str, Any]) -> str | None:
    """The error code a schema-valid ``body`` gets for a rule the schema cannot state, if any."""
    if unstorable(body) is not None:
        return "invalid_payload"
    event = body.get("event")
    if not isinstance(event, dict):
        return None
    if event["project_id"] != body["project_id"]:
        return "event_project_mismatch"
    top = body.get("event_id")
    if top is not None and uuid.UUID(top) != uuid.UUID(event["event_id"]):
        return "event_id_mismatch"
    return None


@CONTRACT
@given(case=BODIES)
def test_every_documented_body_is_accepted(case: Any) -> None:
    body = conform(case.body)
    assert IS_DOCUMENTED.is_valid(body)
    result = judge(body)
    expected = beyond_schema(body)
    if expected is None:
        assert isinstance(result, ValidOccurrence), result
    else:  # a NUL character or a huge integer somewhere in the generated text
        assert isinstance(result, PayloadError) and result.code == expected


DELETE = object()
UUID_TEXT = "5F1C2D3E-4A5B-4C6D-8E7F-0123456789AB"
VALUES: list[Any] = [
    DELETE,
    None,
    True,
    0,
    -1,
    1.5,
    25,
    MAX_EPOCH_SECONDS,
    "",
    "x",
    "LOW",
    "low",
    "INFO",
    "warning",
    UUID_TEXT,
    UUID_TEXT + "\n",
    uuid.UUID(int=7).hex,
    "a" * DEFAULT_LIMITS.max_fingerprint_length,
    "a" * (DEFAULT_LIMITS.max_fingerprint_length + 1),
    "a" * DEFAULT_LIMITS.max_title_length,
    "a" * (DEFAULT_LIMITS.max_title_length + 1),
    [],
    [""],
    ["a"],
    [1],
    ["a"] * DEFAULT_LIMITS.max_fingerprint_elements,
    ["a"] * (DEFAULT_LIMITS.max_fingerprint_elements + 1),
    [["a", "b"]],
    [["a"]],
    [["a", "b", "c"]],
    [{"name": "n", "value": "v"}],
    [{"name": "n", "value": 1}],
    {},
    {"k": "v"},
    {"k": None},
    {"k": 1},
]
PATHS = [
    *sorted(OCCURRENCE_KEYS),
    "fingerprint.0",
    "evidence_display.0.name",
    "evidence_display.0.value",
    "evidence_display.0.important",
    *(f"event.{key}" for key in ("event_id", "project_id", "platform", "timestamp", "tags")),
]


def lenient(path: str, value: Any, body: dict[str, Any]) -> bool:
    """Whether the validator takes ``value`` at ``path`` on purpose where the schema may not."""
    text = value.strip().lower() if isinstance(value, str) else None
    if path == "level":
        return text == "" or text in LEVELS
    if path == "initial_issue_priority" and body.get("priority") is not None:
        return True  # unread: priority wins
    if path in ("priority", "initial_issue_priority"):
        return text in PRIORITY_VALUES or (text or "x").isdigit()
    return path == "assignee" or (path == "detection_time" and isinstance(value, str))


def mutate(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = body
    for step in parents:
        node = node[int(step)] if isinstance(node, list) else node[step]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return body


def with_parents(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with an event and an evidence entry, so every path has somewhere to change."""
    body = copy.deepcopy(body)
    if not isinstance(body.get("event"), dict):
        body["event"] = occurrence()["event"]
    if not body["evidence_display"]:
        body["evidence_display"] = [{"name": "n", "value": "v"}]
    return conform(body)


@settings(CONTRACT, max_examples=400)
@given(case=BODIES, path=st.sampled_from(PATHS), value=st.sampled_from(VALUES))
def test_a_changed_body_is_accepted_exactly_when_the_schema_holds(
    case: Any, path: str, value: Any
) -> None:
    base = with_parents(case.body)
    if beyond_schema(base) is not None:  # a NUL or huge integer in the generated text
        base = with_parents(occurrence(fingerprint=["generated body not storable"]))
    assert IS_DOCUMENTED.is_valid(base)
    if path.split(".")[-1].isdigit() and value is DELETE:
        return  # deleting an element is a different list, not a missing key
    body = mutate(base, path, value)
    if lenient(path, value, body):
        return
    result = judge(body)
    if not IS_DOCUMENTED.is_valid(body):
        assert isinstance(result, PayloadError), (path, value)
        assert result.code == "invalid_payload"
        assert result.field == path or str(result.field).startswith(path + "."), (path, result)
    elif (expected := beyond_schema(body)) is not None:
        assert isinstance(result, PayloadError) and result.code == expected, (path, value)
    else:
        assert isinstance(result, ValidOccurrence), (path, value, result)
