"""Pure payload rules of SPEC §5."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.occurrences.validation import (
    OCCURRENCE_KEYS,
    Limits,
    PayloadError,
    truncate_culprit,
    validate_occurrence,
)
from tests.builders import occurrence


def _code(payload: dict[str, object]) -> tuple[str, str | None]:
    with pytest.raises(PayloadError) as info:
        validate_occurrence(payload)
    return info.value.code, info.value.field


def _message(payload: dict[str, object], limits: Limits = Limits()) -> str:  # noqa: B008
    with pytest.raises(PayloadError) as info:
        validate_occurrence(payload, limits)
    return info.value.message


def test_dashed_uuid_is_stored_as_32_lowercase_hex() -> None:
    raw = str(uuid.uuid4()).upper()
    assert validate_occurrence(occurrence(id=raw)).id == uuid.UUID(raw).hex


@pytest.mark.parametrize(
    "field",
    [
        "id",
        "project_id",
        "fingerprint",
        "issue_title",
        "subtitle",
        "evidence_display",
        "type",
        "detection_time",
    ],
)
def test_missing_required_field_names_it(field: str) -> None:
    payload = occurrence()
    del payload[field]
    assert _code(payload) == ("invalid_payload", field)
    assert _message(payload) == f"{field}: is required"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": "not-a-uuid"}, "id"),
        ({"project_id": "1"}, "project_id"),
        ({"fingerprint": []}, "fingerprint"),
        ({"fingerprint": ["ok", ""]}, "fingerprint.1"),
        ({"fingerprint": "abc"}, "fingerprint"),
        ({"type": True}, "type"),
        ({"detection_time": "yesterday"}, "detection_time"),
        ({"level": "loud"}, "level"),
        ({"priority": "urgent"}, "priority"),
        (
            {"evidence_display": [{"name": "a", "value": 1, "important": True}]},
            "evidence_display.0.value",
        ),
        ({"evidence_data": []}, "evidence_data"),
    ],
)
def test_broken_field_rules_are_invalid_payload(overrides: dict[str, object], field: str) -> None:
    assert _code(occurrence(**overrides)) == ("invalid_payload", field)


@pytest.mark.parametrize("level", [None, ""])
def test_missing_level_means_info(level: object) -> None:
    payload = occurrence(level=level)
    assert validate_occurrence(payload).level == "info"
    del payload["level"]
    assert validate_occurrence(payload).level == "info"


def test_priority_wins_over_initial_issue_priority() -> None:
    valid = validate_occurrence(occurrence(priority="high", initial_issue_priority=25))
    assert valid.priority == 75
    assert validate_occurrence(occurrence(initial_issue_priority="low")).priority == 25
    assert validate_occurrence(occurrence()).priority is None


def test_detection_time_accepts_epoch_and_zoneless_iso_as_utc() -> None:
    expected = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    assert (
        validate_occurrence(occurrence(detection_time=expected.timestamp())).detection_time
        == expected
    )
    assert (
        validate_occurrence(occurrence(detection_time="2026-11-02T11:00:00")).detection_time
        == expected
    )
    offset = validate_occurrence(occurrence(detection_time="2026-11-02T12:00:00+01:00"))
    assert offset.detection_time == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        (0.5, datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2026-11-02T11:00:00Z", datetime(2026, 11, 2, 11, tzinfo=UTC)),
        ("2026-11-02T11:00:00z", datetime(2026, 11, 2, 11, tzinfo=UTC)),
        (" 1793617200 ", datetime(2026, 11, 2, 11, tzinfo=UTC)),
    ],
)
def test_detection_time_range_starts_at_the_epoch_and_z_is_utc(
    value: object, expected: datetime
) -> None:
    assert validate_occurrence(occurrence(detection_time=value)).detection_time == expected


def test_assignee_other_than_user_or_team_becomes_null() -> None:
    assert validate_occurrence(occurrence(assignee="user:42")).assignee == "user:42"
    assert validate_occurrence(occurrence(assignee="team:core")).assignee == "team:core"
    assert validate_occurrence(occurrence(assignee="bob")).assignee is None


def test_culprit_is_cut_to_200_characters_with_ellipsis() -> None:
    assert truncate_culprit("x" * 200) == "x" * 200
    cut = truncate_culprit("x" * 300)
    assert len(cut) == 200 and cut.endswith("...")


def test_event_required_fields_are_checked_before_consistency() -> None:
    payload = occurrence()
    payload["event"] = {"event_id": uuid.uuid4().hex, "project_id": 2, "timestamp": 1}
    assert _code(payload) == ("invalid_payload", "event.platform")


def test_event_project_must_match() -> None:
    payload = occurrence()
    payload["event"]["project_id"] = 2
    assert _code(payload) == ("event_project_mismatch", "event.project_id")
    assert _message(payload) == "event.project_id must equal project_id"


def test_top_level_event_id_must_match_event() -> None:
    payload = occurrence()
    payload["event_id"] = uuid.uuid4().hex
    assert _code(payload) == ("event_id_mismatch", "event_id")
    assert _message(payload) == "event_id must equal event.event_id"


def test_optional_texts_and_evidence_data_default_and_keep_what_is_sent() -> None:
    valid = validate_occurrence(occurrence(culprit=None, resource_id=None, evidence_data=None))
    assert (valid.culprit, valid.resource_id, valid.evidence_data) == ("", None, {})
    valid = validate_occurrence(occurrence(resource_id="db-7"))
    assert valid.resource_id == "db-7"
    long_id = occurrence(resource_id="r" * 6, issue_title="t", subtitle="", culprit="")
    assert (
        _message(long_id, Limits(max_title_length=5)) == "resource_id: must be at most 5 characters"
    )


def test_too_many_fingerprint_elements_are_refused_by_count() -> None:
    payload = occurrence(fingerprint=["a", "b", "c"])
    assert _message(payload, Limits(max_fingerprint_elements=2)) == (
        "fingerprint: must have at most 2 elements"
    )


def test_event_id_is_taken_from_event_when_omitted() -> None:
    payload = occurrence()
    valid = validate_occurrence(payload)
    assert valid.event_id == payload["event"]["event_id"]


def test_unkept_event_keys_are_listed_as_ignored() -> None:
    payload = occurrence()
    payload["event"].update({"attachments": [1], "spans": [], "release": "1.0"})
    valid = validate_occurrence(payload)
    assert valid.ignored_fields == ["attachments", "spans"]
    assert valid.event is not None and valid.event["release"] == "1.0"
    assert valid.event["level"] == "warning" and valid.event["title"] == "Slow thing"


def test_unknown_top_level_keys_are_listed_before_the_events() -> None:
    payload = occurrence(zeta=1, alpha=2)
    payload["event"]["spans"] = []
    assert validate_occurrence(payload).ignored_fields == ["zeta", "alpha", "spans"]


def test_the_known_top_level_keys_are_the_documented_ones() -> None:
    from app.occurrences.schemas import OccurrenceIn

    assert set(OccurrenceIn.model_fields) == OCCURRENCE_KEYS


@pytest.mark.parametrize(
    ("extra", "field", "why"),
    [
        ({"new_status": 1}, "new_status", "new_status and no issue_title"),
        ({"payload_type": "status_change"}, "payload_type", "payload_type status_change"),
    ],
)
def test_a_status_change_body_is_refused_with_where_to_send_it(
    extra: dict[str, object], field: str, why: str
) -> None:
    body = {"fingerprint": ["a"], "project_id": 1, **extra}
    with pytest.raises(PayloadError) as info:
        validate_occurrence(body)
    assert (info.value.code, info.value.field) == ("invalid_payload", field)
    assert info.value.message == (
        f"this body is a status change ({why}), not an occurrence: send it to "
        'POST /status-changes, or to POST /ingest with "payload_type": "status_change"'
    )


@pytest.mark.parametrize("body", [[], "occurrence", None])
def test_a_body_that_is_no_object_is_refused_without_a_field(body: object) -> None:
    with pytest.raises(PayloadError) as info:
        validate_occurrence(body)
    error = info.value
    assert (error.code, error.field, error.message) == (
        "invalid_payload",
        None,
        "occurrence must be a JSON object",
    )


def test_text_that_only_looks_like_an_escaped_nul_is_accepted() -> None:
    # A backslash then "u0000" (no NUL): the fast nesting bound gives up, the walk accepts it.
    payload = occurrence(culprit="C:\\u0000", evidence_data={"path": {"to": "\\u0000"}})
    valid = validate_occurrence(payload)
    assert (valid.culprit, valid.evidence_data["path"]["to"]) == ("C:\\u0000", "\\u0000")


def test_evidence_without_important_is_not_important() -> None:
    payload = occurrence(evidence_display=[{"name": "n", "value": "v"}])
    assert validate_occurrence(payload).evidence_display == [
        {"name": "n", "value": "v", "important": False}
    ]


def test_texts_up_to_their_limit_are_accepted_and_one_more_is_named() -> None:
    from app.occurrences.validation import Limits

    limits = Limits(max_title_length=5, max_fingerprint_length=3)
    fits = {"issue_title": "12345", "subtitle": "12345", "culprit": "", "fingerprint": ["abc"]}
    valid = validate_occurrence(occurrence(**fits), limits)
    assert (valid.issue_title, valid.subtitle, valid.fingerprint) == ("12345", "12345", ("abc",))
    with pytest.raises(PayloadError) as info:
        validate_occurrence(occurrence(**(fits | {"subtitle": "123456"})), limits)
    assert info.value.message == "subtitle: must be at most 5 characters"
    with pytest.raises(PayloadError) as info:
        validate_occurrence(occurrence(**(fits | {"fingerprint": ["abcd"]})), limits)
    assert info.value.message == "fingerprint.0: must be at most 3 characters"


def test_event_or_event_id_is_required() -> None:
    payload = occurrence()
    del payload["event"]
    assert _code(payload) == ("invalid_payload", "event")


def test_event_tags_accept_pairs_and_reject_other_shapes() -> None:
    payload = occurrence()
    payload["event"]["tags"] = [["env", "prod"]]
    assert validate_occurrence(payload).event is not None
    payload["event"]["tags"] = "env=prod"
    assert _code(payload) == ("invalid_payload", "event.tags")


def test_limits_on_fingerprint_titles_and_nesting_are_enforced() -> None:
    from app.occurrences.validation import Limits

    limits = Limits(
        max_fingerprint_elements=3, max_fingerprint_length=10, max_title_length=20, max_depth=4
    )
    cases = [
        (occurrence(fingerprint=["a", "b", "c", "d"]), "fingerprint"),
        (occurrence(fingerprint=["x" * 11]), "fingerprint.0"),
        (occurrence(issue_title="t" * 21), "issue_title"),
        (occurrence(subtitle="s" * 21), "subtitle"),
        (occurrence(culprit="c" * 21), "culprit"),
        (occurrence(evidence_data={"a": {"b": {"c": {"d": {"e": 1}}}}}), "evidence_data"),
    ]
    for payload, field in cases:
        with pytest.raises(PayloadError) as info:
            validate_occurrence(payload, limits)
        assert (info.value.code, info.value.field) == ("invalid_payload", field)
    deep_event = occurrence()
    deep_event["event"]["extra"] = {"a": {"b": {"c": {"d": 1}}}}
    with pytest.raises(PayloadError) as info:
        validate_occurrence(deep_event, limits)
    assert info.value.field == "event"
    assert validate_occurrence(occurrence(fingerprint=["a", "b", "c"]), limits).fingerprint == (
        "a",
        "b",
        "c",
    )


@pytest.mark.parametrize(
    ("evidence_data", "accepted"),
    [
        ({}, True),
        ({"a": 1}, True),
        ({"a": {"b": 1}}, True),
        ({"a": {}}, True),
        ({"a": []}, True),
        ({"a": [1, "x"]}, True),
        ({"a": {"b": {}}}, False),
        ({"a": [[]]}, False),
        ({"a": [{}]}, False),
        ({"a": [1, [2]]}, False),
        ({"a": 1, "b": {"c": []}}, False),
    ],
)
def test_nesting_limit_counts_every_list_and_object(
    evidence_data: dict[str, object], accepted: bool
) -> None:
    # evidence_data itself is level 1: with a limit of 2, one more list or object fits.
    from app.occurrences.validation import Limits

    payload = occurrence(evidence_data=evidence_data)
    if accepted:
        assert validate_occurrence(payload, Limits(max_depth=2)).evidence_data == evidence_data
    else:
        with pytest.raises(PayloadError) as info:
            validate_occurrence(payload, Limits(max_depth=2))
        assert info.value.field == "evidence_data"
        assert info.value.message == "evidence_data: is nested deeper than 2 levels"


def test_error_without_a_field_has_no_details() -> None:
    assert PayloadError("invalid_payload", "occurrence must be a JSON object").details() is None
    assert PayloadError("invalid_payload", "is required", "id").details() == {"field": "id"}


def _with_event(**changes: object) -> dict[str, object]:
    payload = occurrence()
    event = payload["event"]
    for key, value in changes.items():
        if value is _MISSING:
            del event[key]
        else:
            event[key] = value
    return payload


_MISSING = object()
_OUT_OF_RANGE = "is out of range"
_NOT_A_TIME = "must be epoch seconds or an ISO-8601 time"
_UUID = "must be a UUID (dashed or 32 hex characters)"


# Every rejection of the payload rules, with the field it names and the message the sender
# reads (the error body's `message` and `details.field`).
@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        (occurrence(id="x"), "id", _UUID),
        (occurrence(id=f"{uuid.uuid4().hex}\n"), "id", _UUID),
        (occurrence(project_id=1.0), "project_id", "must be an integer"),
        (occurrence(type=True), "type", "must be an integer"),
        (
            occurrence(fingerprint=[]),
            "fingerprint",
            "must be a non-empty list of non-empty strings",
        ),
        (occurrence(fingerprint=["a", 7]), "fingerprint.1", "must be a non-empty string"),
        (occurrence(issue_title=1), "issue_title", "must be a string"),
        (occurrence(subtitle=None), "subtitle", "must be a string"),
        (occurrence(culprit=1), "culprit", "must be a string"),
        (occurrence(resource_id=1), "resource_id", "must be a string"),
        (occurrence(evidence_data=[]), "evidence_data", "must be an object"),
        (occurrence(evidence_display={}), "evidence_display", "must be a list"),
        (
            occurrence(evidence_display=["a"]),
            "evidence_display.0",
            "must be an object with name, value and important",
        ),
        (
            occurrence(evidence_display=[{"name": 1, "value": "v"}]),
            "evidence_display.0.name",
            "must be a string",
        ),
        (
            occurrence(evidence_display=[{"name": "n", "value": None}]),
            "evidence_display.0.value",
            "must be a string",
        ),
        (
            occurrence(evidence_display=[{"name": "n", "value": "v", "important": 1}]),
            "evidence_display.0.important",
            "must be a boolean",
        ),
        (occurrence(detection_time=True), "detection_time", _NOT_A_TIME),
        (occurrence(detection_time=None), "detection_time", _NOT_A_TIME),
        (occurrence(detection_time=" "), "detection_time", _NOT_A_TIME),
        (occurrence(detection_time="noon"), "detection_time", _NOT_A_TIME),
        (occurrence(detection_time=-1), "detection_time", _OUT_OF_RANGE),
        (occurrence(detection_time="-1"), "detection_time", _OUT_OF_RANGE),
        (occurrence(detection_time=float("inf")), "detection_time", _OUT_OF_RANGE),
        (occurrence(detection_time=253402300800), "detection_time", _OUT_OF_RANGE),
        (occurrence(detection_time="1969-12-31T23:59:59Z"), "detection_time", _OUT_OF_RANGE),
        (
            occurrence(detection_time="0001-01-01T00:00:00+01:00"),
            "detection_time",
            _OUT_OF_RANGE,
        ),
        (occurrence(level="loud"), "level", "must be one of debug, info, warning, error, fatal"),
        (occurrence(level=3), "level", "must be one of debug, info, warning, error, fatal"),
        (occurrence(priority="urgent"), "priority", "must be 25, 50, 75, low, medium or high"),
        (
            occurrence(initial_issue_priority=10),
            "initial_issue_priority",
            "must be 25, 50, 75, low, medium or high",
        ),
        (occurrence(event="e"), "event", "must be an object"),
        (_with_event(event_id=_MISSING), "event.event_id", "is required"),
        (_with_event(event_id="e"), "event.event_id", _UUID),
        (_with_event(project_id=_MISSING), "event.project_id", "is required"),
        (_with_event(project_id="1"), "event.project_id", "must be an integer"),
        (_with_event(platform=_MISSING), "event.platform", "is required"),
        (_with_event(platform=None), "event.platform", "must be a string"),
        (_with_event(timestamp=_MISSING), "event.timestamp", "is required"),
        (_with_event(timestamp=None), "event.timestamp", "must be a number or a string"),
        (_with_event(timestamp=True), "event.timestamp", "must be a number or a string"),
        (_with_event(timestamp=[1]), "event.timestamp", "must be a number or a string"),
        (_with_event(tags={"env": 5}), "event.tags.env", "must be a string"),
        (
            _with_event(tags=[["a", "b", "c"]]),
            "event.tags.0",
            "must be a [key, value] pair of strings",
        ),
        (_with_event(tags=[["a", 1]]), "event.tags.0", "must be a [key, value] pair of strings"),
        (_with_event(tags=["ab"]), "event.tags.0", "must be a [key, value] pair of strings"),
        (_with_event(tags=5), "event.tags", "must be an object of strings or a list of pairs"),
        (occurrence(event=None), "event", "either event or event_id is required"),
        (occurrence() | {"event_id": "e"}, "event_id", _UUID),
        (
            occurrence(culprit="a\x00"),
            "culprit",
            "must not contain NUL characters or integers beyond 64 bits",
        ),
    ],
)
def test_every_rejection_names_its_field_and_says_why(
    payload: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(PayloadError) as info:
        validate_occurrence(payload)
    error = info.value
    assert (error.code, error.field) == ("invalid_payload", field)
    assert str(error) == error.message == f"{field}: {message}"


@pytest.mark.parametrize("where", ["evidence_data", "event"])
def test_nesting_limit_holds_when_brackets_in_texts_make_the_bound_exact(where: str) -> None:
    # 64 brackets or more: the nesting bound is the payload's exact depth, one more than its
    # deepest field's, with no slack left for an off-by-one.
    payload = occurrence(issue_title="[" * 64, evidence_data={})
    if where == "event":
        payload["event"]["extra"] = {"b": {}}
    else:
        payload["evidence_data"] = {"a": {"b": {}}}
    with pytest.raises(PayloadError) as info:
        validate_occurrence(payload, Limits(max_depth=2))
    assert (info.value.field, info.value.message) == (
        where,
        f"{where}: is nested deeper than 2 levels",
    )
