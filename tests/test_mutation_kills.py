"""Tests that kill mutants `make mutate` found surviving (docs/testing.md).

The rule modules are tested without a database; the ingest decisions over HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.issues import cursor
from app.issues.status import parse_status, parse_substatus
from tests.builders import ctx_of, make_group, make_project, occurrence
from tests.conftest import FakeClock


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


# The ingest decisions (app/occurrences/service.py), over HTTP on the test database.


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
