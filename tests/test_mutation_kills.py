"""Tests that kill mutants `make mutate` found surviving (docs/testing.md).

The rule modules are tested without a database; the ingest decisions over HTTP.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.issues import cursor
from app.issues.status import parse_status, parse_substatus
from app.lifecycle.forecast import hour_date, hour_start
from app.occurrences.validation import validate_occurrence
from tests.builders import ctx_of, make_group, make_project, occurrence
from tests.conftest import FakeClock, assert_error


@pytest.mark.parametrize("row_id", [1, 12, 123, 1234])
def test_cursor_has_no_base64_padding(row_id: int) -> None:
    # Ids of different lengths give every remainder of the base64 length modulo 4.
    encoded = cursor.encode("id", row_id, row_id)
    assert "=" not in encoded
    assert cursor.decode(encoded, "id") == (row_id, row_id)


def test_cursor_round_trips_an_aware_datetime() -> None:
    moment = datetime(2026, 11, 2, 12, 30, 15, 123456, tzinfo=UTC)
    assert cursor.decode(cursor.encode("last_seen", moment, 7), "last_seen") == (moment, 7)


@pytest.mark.parametrize("text", ["!!not base64!!", "e30", "bnVsbA", "eyJzIjoibGFzdF9zZWVuIn0"])
def test_bad_cursor_says_it_is_malformed(text: str) -> None:
    # Not base64; {}; null; {"s": "last_seen"} without an id.
    with pytest.raises(cursor.BadCursor) as exc:
        cursor.decode(text, "last_seen")
    assert str(exc.value) == "malformed cursor"


@pytest.mark.parametrize(
    "value",
    [{"t": 5}, {"t": "2026-11-02T12:00:00"}, {"t": "noon"}, {"t": "0001-01-01T00:00:00+01:00"}],
)
def test_cursor_with_a_bad_time_is_malformed(value: Any) -> None:
    # Not text, no zone, not a time, out of range once in UTC.
    text = base64.urlsafe_b64encode(orjson.dumps({"s": "last_seen", "v": value, "i": 1}))
    with pytest.raises(cursor.BadCursor) as exc:
        cursor.decode(text.decode(), "last_seen")
    assert str(exc.value) == "malformed cursor"


def test_cursor_of_another_sort_says_so() -> None:
    with pytest.raises(cursor.BadCursor) as exc:
        cursor.decode(cursor.encode("id", 5, 5), "last_seen")
    assert str(exc.value) == "cursor does not match this query"


@pytest.fixture
def local_zone_paris() -> Iterator[None]:
    """The process's local time zone is Paris (not UTC, as on most servers and CI)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Paris"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("local_zone_paris")
def test_cursor_times_come_back_in_utc_whatever_the_local_zone() -> None:
    moment = datetime(2026, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    value, _ = cursor.decode(cursor.encode("last_seen", moment, 1), "last_seen")
    assert (value, value.utcoffset()) == (moment, timedelta(0))


@pytest.mark.usefixtures("local_zone_paris")
@pytest.mark.parametrize("text", ["2026-11-02T11:00:00", "2026-11-02T12:00:00+01:00"])
def test_detection_times_are_utc_whatever_the_local_zone(text: str) -> None:
    # No zone means UTC, not the server's zone; a zone is converted to UTC.
    moment = validate_occurrence(occurrence(detection_time=text)).detection_time
    assert (moment, moment.utcoffset()) == (datetime(2026, 11, 2, 11, tzinfo=UTC), timedelta(0))


@pytest.mark.usefixtures("local_zone_paris")
def test_forecast_hours_are_utc_whatever_the_local_zone() -> None:
    # Hour 0 is 1970-01-01 00:00 UTC, 01:00 in Paris; 23:00 UTC is already the 2nd in Paris.
    assert hour_start(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert hour_start(0).utcoffset() == timedelta(0)
    assert hour_date(23) == date(1970, 1, 1)


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_status, True, "unknown status: True"),
        (parse_status, 9, "unknown status: 9"),
        (parse_status, "muted", "unknown status: 'muted'"),
        (parse_status, "9", "unknown status: 9"),
        (parse_status, 1.0, "unknown status: 1.0"),
        (parse_substatus, 0, "unknown substatus: 0"),
        (parse_substatus, "42", "unknown substatus: 42"),
        (parse_substatus, "calm", "unknown substatus: 'calm'"),
        (parse_substatus, None, "unknown substatus: None"),
    ],
)
def test_unknown_status_or_substatus_is_named_in_the_error(
    parse: Any, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=r".") as exc:
        parse(value)
    assert str(exc.value) == message


# The ingest decisions (app/occurrences/ingest/decide.py and rules.py), over HTTP on the test database.


def _post(admin: TestClient, payload: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/occurrences", json=payload)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def _dropped(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "occurrence_id": payload["id"],
        "project_id": payload["project_id"],
        "outcome": "dropped",
        "reason": "type_mismatch",
        "issue_id": None,
        "noise": None,
        "ignored_fields": [],
    }


def test_created_answer_has_no_reason_and_no_noise(admin: TestClient) -> None:
    payload = occurrence(fingerprint=["fresh"])
    answer = _post(admin, payload)
    assert answer == {
        "occurrence_id": payload["id"],
        "project_id": 1,
        "outcome": "created",
        "reason": None,
        "issue_id": answer["issue_id"],
        "noise": None,
        "ignored_fields": [],
    }


def test_type_mismatch_answer_with_an_unresolved_issue(admin: TestClient) -> None:
    _post(admin, occurrence(fingerprint=["shared"]))
    other = occurrence(fingerprint=["shared"], type=4001)
    assert _post(admin, other) == _dropped(other)


def test_type_mismatch_answer_with_a_resolved_issue(admin: TestClient, app: FastAPI) -> None:
    make_group(ctx_of(app), fingerprint="resolved-fp", status=1, substatus=None)
    other = occurrence(fingerprint=["resolved-fp"], type=4001)
    assert _post(admin, other) == _dropped(other)


def test_type_mismatch_answer_with_a_pending_window(admin: TestClient) -> None:
    # Types 1004 and 1006 both wait for 3 occurrences.
    assert _post(admin, occurrence(fingerprint=["noisy"], type=1004))["outcome"] == "pending"
    other = occurrence(fingerprint=["noisy"], type=1006)
    assert _post(admin, other) == _dropped(other)


def test_resent_id_of_a_grouped_occurrence_names_its_issue(admin: TestClient) -> None:
    first = _post(admin, occurrence())
    second = occurrence()
    assert _post(admin, second)["outcome"] == "grouped"
    again = _post(admin, second)
    assert (again["outcome"], again["issue_id"]) == ("duplicate", first["issue_id"])


def test_noise_threshold_of_two_keeps_the_first_pending(admin: TestClient) -> None:
    noise = {"ignore_limit": 2, "expiry_seconds": 3600}
    response = admin.post(
        "/admin/issue-types",
        json={"type_id": 9002, "slug": "pair", "description": "Pair", "category": "performance"}
        | {"released": True}
        | {"noise_config": noise},
    )
    assert response.status_code == 201, response.text
    assert _post(admin, occurrence(fingerprint=["pair"], type=9002))["outcome"] == "pending"
    assert _post(admin, occurrence(fingerprint=["pair"], type=9002))["outcome"] == "created"


@pytest.mark.parametrize(
    ("age", "outcome", "status"),
    [
        (timedelta(hours=1), "grouped", ("unresolved", "new")),
        (timedelta(hours=1, seconds=1), "regressed", ("unresolved", "regressed")),
    ],
)
def test_issue_older_than_the_resolve_age_regresses_on_ingest(
    admin: TestClient, app: FastAPI, clock: FakeClock, age: timedelta, outcome: str, status: Any
) -> None:
    ctx = ctx_of(app)
    project = make_project(ctx, resolve_age_hours=1)
    seen = clock.now - age
    group = make_group(
        ctx, project_id=project.id, first_seen=seen, last_seen=seen, latest_detection_time=seen
    )
    payload = occurrence(fingerprint=[f"fp-{group.short_id}"], project_id=project.id)
    payload["detection_time"] = clock.now.isoformat()
    answer = _post(admin, payload)
    assert (answer["outcome"], answer["issue_id"]) == (outcome, group.id)
    body = admin.get(f"/issues/{group.id}").json()
    assert (body["status"], body["substatus"]) == status
    assert body["times_seen"] == 2


@pytest.mark.parametrize(("type_id", "resolve_age_hours"), [(1018, 1), (1, 0)])
def test_old_issue_without_auto_resolve_only_groups(
    admin: TestClient, app: FastAPI, clock: FakeClock, type_id: int, resolve_age_hours: int
) -> None:
    # Type 1018 never auto-resolves; a project with resolve age 0 never does.
    ctx = ctx_of(app)
    project = make_project(ctx, resolve_age_hours=resolve_age_hours)
    seen = clock.now - timedelta(days=30)
    group = make_group(
        ctx,
        project_id=project.id,
        type_id=type_id,
        first_seen=seen,
        last_seen=seen,
        latest_detection_time=seen,
    )
    payload = occurrence(fingerprint=[f"fp-{group.short_id}"], project_id=project.id, type=type_id)
    answer = _post(admin, payload)
    assert (answer["outcome"], answer["issue_id"]) == ("grouped", group.id)
    assert admin.get(f"/issues/{group.id}").json()["substatus"] == "new"


def test_later_occurrence_at_the_same_time_gives_the_issue_its_texts(admin: TestClient) -> None:
    first = _post(admin, occurrence(issue_title="first", level="info"))
    _post(admin, occurrence(issue_title="second", level="error"))
    body = admin.get(f"/issues/{first['issue_id']}").json()
    assert (body["title"], body["level"]) == ("second", "error")


def test_occurrence_priority_leaves_a_locked_priority_alone(admin: TestClient) -> None:
    issue_id = _post(admin, occurrence(priority="low"))["issue_id"]
    response = admin.patch(f"/issues/{issue_id}", json={"priority": "medium"})
    assert response.status_code == 200, response.text
    _post(admin, occurrence(priority="high"))
    body = admin.get(f"/issues/{issue_id}").json()
    assert (body["priority"], body["priority_locked"]) == ("medium", True)


def test_occurrence_of_an_ignored_issue_moves_its_last_seen(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    seen = clock.now - timedelta(hours=3)
    group = make_group(
        ctx_of(app),
        status=2,
        substatus=5,
        first_seen=seen,
        last_seen=seen,
        latest_detection_time=seen,
    )
    payload = occurrence(fingerprint=[f"fp-{group.short_id}"])
    payload["detection_time"] = (seen + timedelta(hours=1)).isoformat()
    _post(admin, payload)
    body = admin.get(f"/issues/{group.id}").json()
    assert body["last_seen"] == (seen + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert body["first_seen"] == seen.isoformat().replace("+00:00", "Z")


def _register_type(admin: TestClient, type_id: int, **config: Any) -> None:
    body = {"type_id": type_id, "slug": f"t{type_id}", "description": "T", "category": 1}
    response = admin.post("/admin/issue-types", json=body | {"released": True} | config)
    assert response.status_code == 201, response.text


def _rate_limited(payload: dict[str, Any]) -> dict[str, Any]:
    return _dropped(payload) | {"outcome": "rate_limited", "reason": "creation_quota"}


def test_creation_quota_answer_names_its_reason(admin: TestClient) -> None:
    _register_type(admin, 9003, creation_quota={"limit": 1, "window_seconds": 3600})
    assert _post(admin, occurrence(fingerprint=["q-a"], type=9003))["outcome"] == "created"
    limited = occurrence(fingerprint=["q-b"], type=9003)
    assert _post(admin, limited) == _rate_limited(limited)


def test_noise_threshold_reached_with_the_quota_used_up_is_rate_limited(
    admin: TestClient,
) -> None:
    noise = {"ignore_limit": 2, "expiry_seconds": 3600}
    quota = {"limit": 1, "window_seconds": 3600}
    _register_type(admin, 9004, noise_config=noise, creation_quota=quota)
    outcomes = [_post(admin, occurrence(fingerprint=["n-a"], type=9004)) for _ in range(2)]
    assert [a["outcome"] for a in outcomes] == ["pending", "created"]
    assert _post(admin, occurrence(fingerprint=["n-b"], type=9004))["outcome"] == "pending"
    limited = occurrence(fingerprint=["n-b"], type=9004)
    assert _post(admin, limited) == _rate_limited(limited)


def test_issue_opened_by_the_noise_threshold_is_answered_without_noise(
    admin: TestClient,
) -> None:
    # Type 1004 waits for 3 occurrences; the third opens the issue.
    answers = [_post(admin, occurrence(fingerprint=["loud"], type=1004)) for _ in range(3)]
    assert [a["outcome"] for a in answers] == ["pending", "pending", "created"]
    assert answers[1]["noise"]["count"] == 2
    assert (answers[2]["noise"], answers[2]["reason"]) == (None, None)


@pytest.mark.parametrize(
    ("type_id", "age"),
    [
        # Auto-resolving type: the second occurrence sits exactly at the resolve age.
        (1, timedelta(hours=1)),
        # A type that never auto-resolves: an old second occurrence is no reason to regress.
        (1018, timedelta(days=2)),
    ],
)
def test_resolved_issue_regresses_once_in_a_batch(
    admin: TestClient, app: FastAPI, clock: FakeClock, type_id: int, age: timedelta
) -> None:
    # The first occurrence regresses the issue; the second counts into an issue that is now
    # unresolved, whose age decides (the ORM path, within one transaction).
    ctx = ctx_of(app)
    project = make_project(ctx, resolve_age_hours=1)
    seen = clock.now - timedelta(days=3)
    group = make_group(
        ctx,
        project_id=project.id,
        type_id=type_id,
        status=1,
        substatus=None,
        first_seen=seen,
        last_seen=seen,
        latest_detection_time=seen,
    )
    items = []
    for _ in range(2):
        item = occurrence(fingerprint=[f"fp-{group.short_id}"], project_id=project.id, type=type_id)
        item["detection_time"] = (clock.now - age).isoformat()
        items.append(item)
    response = admin.post("/occurrences/batch", json={"occurrences": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["outcome"], r["issue_id"]) for r in results] == [
        ("regressed", group.id),
        ("grouped", group.id),
    ]


def test_resent_id_within_one_batch_names_the_issue_it_created(admin: TestClient) -> None:
    item = occurrence(fingerprint=["twice"])
    response = admin.post("/occurrences/batch", json={"occurrences": [item, item]})
    assert response.status_code == 200, response.text
    first, again = response.json()["results"]
    assert first["outcome"] == "created"
    assert (again["outcome"], again["issue_id"]) == ("duplicate", first["issue_id"])


def test_two_element_fingerprint_twice_in_one_batch_opens_one_issue(admin: TestClient) -> None:
    # The second occurrence finds the issue the first opened through its batch reference.
    items = [occurrence(fingerprint=["pair-a", "pair-b"]) for _ in range(2)]
    response = admin.post("/occurrences/batch", json={"occurrences": items})
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["outcome"] == "created"
    assert (second["outcome"], second["issue_id"]) == ("grouped", first["issue_id"])


# Type 2001 is unreleased: its ingest flag (off by default) decides whether it is stored.
UNRELEASED = "profile_file_io_main_thread"


def test_unreleased_type_with_ingest_off_is_dropped_with_its_reason(admin: TestClient) -> None:
    payload = occurrence(fingerprint=["io-off"], type=2001)
    assert _post(admin, payload) == _dropped(payload) | {"reason": "ingest_disabled"}


def test_unreleased_type_follows_its_ingest_flag_not_another_one(admin: TestClient) -> None:
    # Only the post-process flag on: still dropped; the ingest flag on: an issue opens.
    for kind, expected in (("post_process", "dropped"), ("ingest", "created")):
        response = admin.put(f"/admin/issue-types/{UNRELEASED}/flags/{kind}", json={"stage": "ga"})
        assert response.status_code == 200, response.text
        answer = _post(admin, occurrence(fingerprint=["io-on"], type=2001))
        assert answer["outcome"] == expected


def test_missing_event_names_the_event_the_project_and_the_field(admin: TestClient) -> None:
    payload = occurrence()
    del payload["event"]
    payload["event_id"] = "ab" * 16
    error = assert_error(admin.post("/occurrences", json=payload), 422, "event_not_found")
    assert error == {
        "code": "event_not_found",
        "message": f"event {'ab' * 16} was not stored for project 1",
        "details": {"field": "event_id"},
    }


def test_later_occurrence_in_the_batch_that_opened_the_issue_sets_its_priority(
    admin: TestClient,
) -> None:
    # Nobody has set the new issue's priority by hand yet: the second occurrence changes it.
    items = [occurrence(fingerprint=["prio"], priority=p) for p in ("low", "high")]
    response = admin.post("/occurrences/batch", json={"occurrences": items})
    assert response.status_code == 200, response.text
    issue_id = response.json()["results"][0]["issue_id"]
    body = admin.get(f"/issues/{issue_id}").json()
    assert (body["priority"], body["priority_locked"], body["times_seen"]) == ("high", False, 2)


def test_lowering_the_noise_threshold_to_one_lets_the_window_join_the_issue(
    admin: TestClient,
) -> None:
    _register_type(admin, 9005, noise_config={"ignore_limit": 3, "expiry_seconds": 3600})
    assert _post(admin, occurrence(fingerprint=["low-t"], type=9005))["outcome"] == "pending"
    response = admin.patch(
        "/admin/issue-types/t9005", json={"noise_config": {"ignore_limit": 1, "expiry_seconds": 60}}
    )
    assert response.status_code == 200, response.text
    answer = _post(admin, occurrence(fingerprint=["low-t"], type=9005))
    assert answer["outcome"] == "created"
    assert admin.get(f"/issues/{answer['issue_id']}").json()["times_seen"] == 2
    assert admin.get("/pending").json()["data"] == []
