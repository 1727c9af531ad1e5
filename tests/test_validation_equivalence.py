"""The fast payload checks answer exactly as the plain walk they replaced (SPEC §5).

``reference_validate`` and ``reference_unstorable`` are the rules as they read before the fast
paths (orjson pre-check, nesting bound, UUID and time shortcuts); every test compares the
shipped functions with them, result for result and error for error.
"""

from __future__ import annotations

import enum
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.issue_types.registry import parse_priority
from app.issues.status import ASSIGNEE_RE, LEVELS
from app.occurrences import validation
from app.occurrences.validation import Limits, PayloadError, ValidOccurrence, validate_occurrence
from app.storable import MAX_DEPTH, nesting_bound, unstorable, unstorable_path
from tests.builders import occurrence

EQUIV = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the reference: the rules before the fast paths ---------------------------------------------

_MIN_INT = -(2**63)
_MAX_UINT = 2**64 - 1
_UUID_RE = re.compile(
    r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
# The assignee rule has no fast path: the reference uses the one shared definition.
_ASSIGNEE_RE = ASSIGNEE_RE
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEPT_EVENT_KEYS = validation.KEPT_EVENT_KEYS
_KEPT = frozenset(_KEPT_EVENT_KEYS) | {"level", "title"}


def reference_unstorable(value: Any, path: str = "", depth: int = 0) -> str | None:
    if isinstance(value, str):
        return path or "." if "\x00" in value else None
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    if isinstance(value, int):
        return None if _MIN_INT <= value <= _MAX_UINT else path or "."
    if depth >= 64:
        return path or "."
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return child
            found = reference_unstorable(item, child, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = reference_unstorable(item, f"{path}.{i}" if path else str(i), depth + 1)
            if found is not None:
                return found
    return None


def _invalid(field_name: str, message: str) -> PayloadError:
    return PayloadError("invalid_payload", f"{field_name}: {message}", field_name)


def _uuid(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not _UUID_RE.fullmatch(value):
        raise _invalid(field_name, "must be a UUID (dashed or 32 hex characters)")
    return uuid.UUID(value).hex


def _int(value: Any, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field_name, "must be an integer")
    return value


def _str(value: Any, field_name: str, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise _invalid(field_name, "must be a string")
    if limit is not None and len(value) > limit:
        raise _invalid(field_name, f"must be at most {limit} characters")
    return value


def reference_parse_time(value: Any, field_name: str) -> datetime:
    if isinstance(value, bool):
        raise _invalid(field_name, "must be epoch seconds or an ISO-8601 time")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not (0 <= value < 253402300800):
            raise _invalid(field_name, "is out of range")
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return reference_parse_time(number, field_name)
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
        if parsed < _EPOCH:
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


def _check_depth(value: Any, field_name: str, limits: Limits) -> None:
    if _depth(value, limits.max_depth) > limits.max_depth:
        raise _invalid(field_name, f"is nested deeper than {limits.max_depth} levels")


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
    for i, item in enumerate(value):
        name = f"evidence_display.{i}"
        if not isinstance(item, dict):
            raise _invalid(name, "must be an object with name, value and important")
        entry_name = _str(item.get("name"), f"{name}.name")
        entry_value = item.get("value")
        if not isinstance(entry_value, str):
            raise _invalid(f"{name}.value", "must be a string")
        important = item.get("important", False)
        if not isinstance(important, bool):
            raise _invalid(f"{name}.important", "must be a boolean")
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


def _event(raw_event: Any, limits: Limits) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(raw_event, dict):
        raise _invalid("event", "must be an object")
    if "event_id" not in raw_event:
        raise _invalid("event.event_id", "is required")
    event_id = _uuid(raw_event.get("event_id"), "event.event_id")
    if "project_id" not in raw_event:
        raise _invalid("event.project_id", "is required")
    project_id = _int(raw_event.get("project_id"), "event.project_id")
    if "platform" not in raw_event:
        raise _invalid("event.platform", "is required")
    _str(raw_event.get("platform"), "event.platform")
    if "timestamp" not in raw_event:
        raise _invalid("event.timestamp", "is required")
    ts = raw_event.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, int | float | str):
        raise _invalid("event.timestamp", "must be a number or a string")
    _check_depth(raw_event, "event", limits)
    kept = {k: raw_event[k] for k in _KEPT_EVENT_KEYS if k in raw_event}
    kept["event_id"] = event_id
    kept["project_id"] = project_id
    if "tags" in raw_event:
        kept["tags"] = _tags(raw_event.get("tags"))
    ignored = [k for k in raw_event if k not in _KEPT]
    return kept, ignored


_OCCURRENCE_KEYS = validation.OCCURRENCE_KEYS


def reference_validate(raw: Any, limits: Limits) -> ValidOccurrence:
    if not isinstance(raw, dict):
        raise PayloadError("invalid_payload", "occurrence must be a JSON object", None)
    if raw.get("payload_type") == "status_change":
        why = "payload_type status_change"
        raise PayloadError(
            "invalid_payload", validation.STATUS_CHANGE_HINT.format(why=why), "payload_type"
        )
    if "new_status" in raw and "issue_title" not in raw:
        why = "new_status and no issue_title"
        raise PayloadError(
            "invalid_payload", validation.STATUS_CHANGE_HINT.format(why=why), "new_status"
        )
    bad = reference_unstorable(raw)
    if bad is not None:
        raise _invalid(bad, "must not contain NUL characters or integers beyond 64 bits")
    for required in (
        "id",
        "project_id",
        "fingerprint",
        "issue_title",
        "subtitle",
        "evidence_display",
        "type",
        "detection_time",
    ):
        if required not in raw:
            raise _invalid(required, "is required")
    occ_id = _uuid(raw["id"], "id")
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
    _check_depth(evidence_data, "evidence_data", limits)
    evidence_display = _evidence_display(raw["evidence_display"])
    type_id = _int(raw["type"], "type")
    detection_time = reference_parse_time(raw["detection_time"], "detection_time")
    level = _level(raw.get("level"))
    priority = _priority(raw)
    assignee = raw.get("assignee")
    if not (isinstance(assignee, str) and _ASSIGNEE_RE.fullmatch(assignee)):
        assignee = None
    raw_event = raw.get("event")
    top_event_id = raw.get("event_id")
    if raw_event is None and top_event_id is None:
        raise _invalid("event", "either event or event_id is required")
    if top_event_id is not None:
        top_event_id = _uuid(top_event_id, "event_id")
    event: dict[str, Any] | None = None
    ignored = [k for k in raw if k not in _OCCURRENCE_KEYS]
    if raw_event is not None:
        event, event_ignored = _event(raw_event, limits)
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
    return ValidOccurrence(
        id=occ_id,
        project_id=project_id,
        fingerprint=tuple(fingerprint),
        issue_title=title,
        subtitle=subtitle,
        culprit=culprit,
        resource_id=resource_id,
        evidence_data=evidence_data,
        evidence_display=evidence_display,
        type_id=type_id,
        detection_time=detection_time,
        level=level,
        priority=priority,
        assignee=assignee,
        event_id=event_id,
        event=event,
        ignored_fields=ignored,
    )


# -- comparing outcomes -------------------------------------------------------------------------


def outcome(rule: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """What a call gives, in a form where equal means the same answer to the byte."""
    try:
        result = rule(*args)
    except PayloadError as exc:
        return ("payload_error", exc.code, exc.message, exc.field, exc.details(), str(exc))
    except Exception as exc:  # the reference's own crashes must be kept too
        return ("crash", type(exc), str(exc))
    if isinstance(result, ValidOccurrence):
        # repr shows every field (datetime zone, dict order); the __dict__ order and types too.
        return (
            "valid",
            repr(result),
            list(vars(result)),
            [type(getattr(result, f.name)) for f in fields(result)],
            result.detection_time.tzinfo,
        )
    return ("value", repr(result))


def assert_same_validation(raw: Any, limits: Limits = Limits()) -> None:  # noqa: B008
    new = outcome(validate_occurrence, raw, limits)
    assert new == outcome(reference_validate, raw, limits)
    if new[0] == "valid":  # the fast constructor built what the dataclass would have built
        built = validate_occurrence(raw, limits)
        assert built == ValidOccurrence(**{f.name: getattr(built, f.name) for f in fields(built)})


def assert_same_storability(value: Any) -> None:
    expected = reference_unstorable(value)
    assert unstorable(value) == expected
    assert unstorable_path(value) == expected
    bound = nesting_bound(value)
    if bound is not None:
        assert expected is None
        assert _depth(value, MAX_DEPTH) <= bound


# -- strategies ---------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "\x00"
    BLUE = 2**70
    GREEN = "green"  # orjson writes it as a plain string, the walk sees an object


@dataclass(frozen=True)
class Point:
    x: int


class Mapping(dict[str, Any]):
    """A dict subclass: orjson is told not to vouch for it."""


class Sneaky(dict[str, Any]):
    """Shows the walk other items than orjson, which reads the dict's storage, would see."""

    def items(self) -> Any:
        return [("k", "\x00")]


EDGE_INTS = [-(2**63) - 1, -(2**63), -1, 0, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70, -(2**70)]
texts = (
    st.text(max_size=12)
    | st.sampled_from(["\x00", "a\x00b", "\\u0000", "\\\\u0000", "\ud800", "[[{{", "]}", "é€😀"])
    | st.text(alphabet=st.sampled_from(["\x00", "\\", "u", "0", "[", "{", '"', "a"]), max_size=8)
)
keys = texts | st.sampled_from(["", "k\x00", "\\u0000"])
odd_scalars = st.sampled_from(
    [
        {1, 2},
        b"\x00",
        uuid.UUID(int=0),
        datetime(2026, 1, 1),
        Colour.RED,
        Colour.BLUE,
        Point(2**70),
        object(),
        Mapping(a="\x00"),
        Mapping(a=1),
        Sneaky(k="ok"),
        Colour.GREEN,
        (2**70,),
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from(EDGE_INTS)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
json_like = st.recursive(
    scalars | odd_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
        | st.dictionaries(st.integers(-3, 3), children, max_size=2)
    ),
    max_leaves=16,
)


def nested(levels: int, leaf: Any, *, kind: str = "list") -> Any:
    """``leaf`` inside exactly ``levels`` lists (or objects, or both in turn)."""
    value = leaf
    for i in range(levels):
        use_dict = kind == "dict" or (kind == "mixed" and i % 2)
        value = {"k": value} if use_dict else [value]
    return value


deep_values = st.builds(
    nested,
    st.integers(min_value=0, max_value=70),
    st.sampled_from(
        [1, "x", "\x00", 2**64, {}, [], None, Colour.RED, Colour.GREEN, uuid.UUID(int=1), {1, 2}]
    ),
    kind=st.sampled_from(["list", "dict", "mixed"]),
)
uuid_texts = (
    st.uuids().map(str)
    | st.uuids().map(lambda u: u.hex)
    | st.uuids().map(lambda u: str(u).upper())
    | st.uuids().map(lambda u: u.hex + "\n")
    | st.uuids().map(lambda u: str(u) + "\n")
    | st.uuids().map(lambda u: "{" + str(u) + "}")
    | st.uuids().map(lambda u: "urn:uuid:" + str(u))
    | st.uuids().map(lambda u: " " + u.hex)
    | st.uuids().map(lambda u: u.hex[:31])
    | st.uuids().map(lambda u: u.hex + "0")
    | st.text(alphabet="0123456789abcdefABCDEF-\n", min_size=30, max_size=38)
)
instants = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.none()
    | st.just(UTC)
    | st.builds(
        timezone,
        st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timedelta(minutes=m)),
    ),
)
time_texts = (
    instants.map(datetime.isoformat)
    | instants.map(lambda d: d.isoformat().replace("+00:00", "Z"))
    | instants.map(lambda d: d.isoformat().replace("+00:00", "z"))
    | instants.map(lambda d: d.isoformat(sep=" "))
    | instants.map(lambda d: " " + d.isoformat() + "\n")
    | instants.map(lambda d: d.strftime("%Y%m%dT%H%M%S"))
    | instants.map(lambda d: d.strftime("%Y%m%dT%H%M%SZ"))
    | instants.map(lambda d: d.strftime("%Y-%m-%d"))
    | st.floats(allow_nan=True, allow_infinity=True).map(str)
    | st.integers(min_value=-(10**12), max_value=10**13).map(str)
    | st.sampled_from(
        [
            "",
            " ",
            "1_000",
            "+5",
            "1e3",
            "inf",
            "-inf",
            "nan",
            "Infinity",
            "١٢٣",
            "1:2",
            "12:00",
            "T12:00",
            "2026-11-02T11:00:00ZZ",
            "2026-11-02Z11:00:00",
            "2026-11-02T11:00:00+24:00",
            "2026-11-02T11:00:00.123456789Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "2026-W45-1T11:00:00",
            "2026-306T11:00",
        ]
    )
    | st.text(alphabet="0123456789-:TZz+. e_", max_size=26)
)
times = time_texts | st.floats(allow_nan=True) | st.integers(-5, 2**40) | st.booleans() | st.none()
field_values = json_like | uuid_texts | time_texts
FIELDS = sorted(occurrence()) + ["priority", "initial_issue_priority", "assignee", "event_id"]
EVENT_KEYS = ["event_id", "project_id", "platform", "timestamp", "tags", "extra", "attachments"]
small_limits = st.builds(
    Limits,
    max_fingerprint_elements=st.integers(1, 5),
    max_fingerprint_length=st.integers(1, 20),
    max_title_length=st.integers(1, 40),
    max_depth=st.integers(0, 70),
)


# -- storability --------------------------------------------------------------------------------


@EQUIV
@given(value=json_like)
def test_storability_of_any_value_matches_the_walk(value: Any) -> None:
    assert_same_storability(value)
    assert_same_storability({"evidence_data": value, "n": [value, (value,)]})


@EQUIV
@given(value=deep_values, wrap=st.integers(0, 2))
def test_storability_at_the_depth_limit_matches_the_walk(value: Any, wrap: int) -> None:
    assert_same_storability(nested(wrap, value, kind="mixed"))


@pytest.mark.parametrize("kind", ["list", "dict", "mixed"])
@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1])
def test_storability_just_around_the_walks_depth(kind: str, levels: int) -> None:
    leaves = (1, [], {}, "x", "\x00", 2**64, Colour.RED, Colour.GREEN, uuid.UUID(int=1))
    for leaf in (*leaves, datetime(2026, 1, 1), Sneaky(k="ok"), {2}):
        assert_same_storability(nested(levels, leaf, kind=kind))
    # Many containers side by side, shallow: counted level by level rather than refused.
    wide = {"a": [[{"b": i}] for i in range(200)], "c": nested(levels - 3, 1, kind=kind)}
    assert_same_storability(wide)


def test_nul_and_huge_integers_are_found_wherever_they_are() -> None:
    for bad in ("\x00", 2**64, -(2**63) - 1):
        assert_same_storability({"a": [1, {"b": bad}]})
        assert_same_storability([{"ok": 1}, (2, bad)])
    assert_same_storability({"k\x00": 1})
    assert_same_storability({"\\u0000": "\\u0000"})  # looks like an escaped NUL, is not one
    assert unstorable({"a": [1, {"b\x00": 2}]}) == "a.1.b\x00"


def test_the_nul_search_is_settled_by_the_first_backslash() -> None:
    # A NUL is always written escaped, so JSON text without a backslash needs no NUL search;
    # with one (quotes, newlines) but no NUL the payload still gets its bound, not the walk.
    assert nesting_bound({"a": "plain"}, 1) == 1
    assert nesting_bound({"a": 'say "hi"\n'}, 1) == 1
    assert nesting_bound({"a": "x\x00"}) is None
    assert nesting_bound({"a": ['say "hi"', "\x00"]}) is None


@pytest.mark.parametrize("kind", ["list", "dict", "mixed"])
@pytest.mark.parametrize("levels", [1, 2, 5, 32, 33])
def test_the_indent_settles_the_bound_asked_for(kind: str, levels: int) -> None:
    # Exactly ``levels`` deep, an empty container at the bottom (written on its parent's line):
    # asked for that many, the indent settles it; asked for fewer, the brackets bound it.
    value = nested(levels - 1, [] if kind == "list" else {}, kind=kind)
    assert _depth(value, MAX_DEPTH) == levels
    assert nesting_bound(value, levels) == levels
    if levels > 1:
        assert nesting_bound(value, levels - 1) == levels  # one bracket per container
    # A scalar at the bottom: its line is indented as deep as its container.
    scalar = nested(levels, 1, kind=kind)
    assert nesting_bound(scalar, levels + 1) == levels + 1
    assert nesting_bound(scalar, levels) == levels
    assert nesting_bound({"wide": [[i] for i in range(100)]}, 3) == 3  # many brackets, shallow


# -- validation ---------------------------------------------------------------------------------


@EQUIV
@given(raw=json_like)
def test_validating_any_value_answers_as_before(raw: Any) -> None:
    assert_same_validation(raw)


@EQUIV
@given(field=st.sampled_from(FIELDS), value=field_values, limits=small_limits | st.just(Limits()))
def test_one_mangled_field_answers_as_before(field: str, value: Any, limits: Limits) -> None:
    assert_same_validation(occurrence(**{field: value}), limits)


@EQUIV
@given(
    extra=st.dictionaries(
        st.sampled_from(["new_status", "payload_type", "colour", "issue_title", "id"]) | st.text(),
        field_values,
        max_size=4,
    ),
    drop=st.sets(st.sampled_from(["issue_title", "event", "id"])),
)
def test_extra_and_missing_top_level_keys_answer_as_before(
    extra: dict[str, Any], drop: set[str]
) -> None:
    raw = occurrence()
    for key in drop:
        del raw[key]
    raw.update(extra)
    assert_same_validation(raw)


@EQUIV
@given(key=st.sampled_from(EVENT_KEYS), value=field_values | deep_values)
def test_one_mangled_event_field_answers_as_before(key: str, value: Any) -> None:
    raw = occurrence()
    raw["event"][key] = value
    assert_same_validation(raw)


@EQUIV
@given(evidence=deep_values, extra=deep_values, limits=small_limits)
def test_nesting_at_and_past_the_limit_answers_as_before(
    evidence: Any, extra: Any, limits: Limits
) -> None:
    raw = occurrence(evidence_data={"e": evidence})
    raw["event"]["extra"] = extra
    assert_same_validation(raw, limits)
    assert_same_validation(occurrence(evidence_data=evidence), limits)


@pytest.mark.parametrize("max_depth", [1, 4, 31, 32, 33, 62, 63, 64])
def test_nesting_exactly_at_the_limit_and_one_past(max_depth: int) -> None:
    limits = Limits(max_depth=max_depth)
    for levels in (max_depth - 1, max_depth, max_depth + 1):
        for kind in ("list", "dict", "mixed"):
            assert_same_validation(occurrence(evidence_data={"e": nested(levels, 1, kind=kind)}))
            assert_same_validation(
                occurrence(evidence_data={"e": nested(levels, 1, kind=kind)}), limits
            )
            raw = occurrence()
            raw["event"]["extra"] = nested(levels, "x", kind=kind)
            assert_same_validation(raw, limits)


@EQUIV
@given(value=times)
def test_detection_times_answer_as_before(value: Any) -> None:
    assert_same_validation(occurrence(detection_time=value))


@EQUIV
@given(value=uuid_texts)
def test_uuids_answer_as_before(value: str) -> None:
    assert_same_validation(occurrence(id=value))
    assert_same_validation(occurrence(event_id=value))
    raw = occurrence()
    raw["event"]["event_id"] = value
    assert_same_validation(raw)
    raw["event_id"] = value
    assert_same_validation(raw)


@EQUIV
@given(
    items=st.lists(
        json_like
        | st.fixed_dictionaries(
            {},
            optional={
                "name": texts | st.integers(),
                "value": texts | st.none(),
                "important": st.booleans() | st.integers(0, 1) | st.none(),
            },
        ),
        max_size=4,
    )
)
def test_evidence_display_answers_as_before(items: list[Any]) -> None:
    assert_same_validation(occurrence(evidence_display=items))


def test_a_large_realistic_payload_answers_as_before() -> None:
    raw = occurrence()
    raw["event"]["breadcrumbs"] = {
        "values": [{"message": f"q{i}", "data": {"rows": i, "ids": [i, i + 1]}} for i in range(80)]
    }
    raw["event"]["stacktrace"] = {"frames": [{"vars": {"i": [i]}} for i in range(40)]}
    assert_same_validation(raw)
    raw["event"]["stacktrace"]["frames"][7]["vars"]["x"] = "\x00"
    assert_same_validation(raw)
    raw["event"]["stacktrace"]["frames"][7]["vars"]["x"] = 2**64
    assert_same_validation(raw)


def test_the_fast_constructor_fills_every_field() -> None:
    valid = validate_occurrence(occurrence())
    assert list(vars(valid)) == [f.name for f in fields(ValidOccurrence)]
