"""Regression tests for the 500s fuzzing found: each input now answers a 4xx in the SPEC §10 shape."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.builders import ctx_of, make_group, make_project, occurrence
from tests.conftest import assert_error

TOO_BIG = 2**63  # one past the largest 64-bit id
OVERFLOWING_TIME = "9999-12-31T23:59:59-14:00"  # past datetime.max once converted to UTC


def cursor_of(data: dict[str, Any]) -> str:
    """A hand-made stream cursor."""
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


@pytest.mark.parametrize(
    "path",
    [
        f"/issues/{TOO_BIG}",
        f"/issues/{TOO_BIG}/occurrences",
        f"/issues/{-TOO_BIG - 1}",
        f"/admin/webhooks/{TOO_BIG}/deliveries",
        f"/admin/webhooks/{-TOO_BIG - 1}/deliveries",
        f"/admin/projects/{TOO_BIG}/webhooks",
        f"/occurrences/{'a' * 32}?project_id={TOO_BIG}",
    ],
)
def test_ids_beyond_64_bits_in_the_url_are_invalid(admin: TestClient, path: str) -> None:
    assert_error(admin.get(path), 422, "invalid_payload")


@pytest.mark.parametrize("path", ["/issues", "/pending"])
def test_project_filter_beyond_64_bits_is_not_found(admin: TestClient, path: str) -> None:
    assert_error(admin.get(path, params={"project": TOO_BIG}), 404, "project_not_found")


def test_body_that_is_not_utf8_is_an_invalid_payload(admin: TestClient) -> None:
    response = admin.post(
        "/admin/organizations",
        content=b"\xff\xfe\x18",
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 422, "invalid_payload")


@pytest.mark.parametrize(
    ("sort", "value", "last_id"),
    [
        ("times_seen", "abc", 1),
        ("times_seen", {"x": 1}, 1),
        ("priority", [1], 1),
        ("times_seen", True, 1),
        ("times_seen", 1.5, 1),
        ("times_seen", 2**64 - 1, 1),
        ("times_seen", 1, 2**63),
        ("last_seen", "zzz", 1),
        ("last_seen", {"t": 5}, 1),
        ("last_seen", {"t": "2026-01-01T00:00:00"}, 1),  # no zone: not one of ours
        ("first_seen", {"t": "2026-01-01T00:00:00+00:00"}, "1"),
    ],
)
def test_hand_made_stream_cursor_of_the_wrong_type_is_invalid(
    admin: TestClient, app: FastAPI, sort: str, value: Any, last_id: Any
) -> None:
    make_group(ctx_of(app))
    cursor = cursor_of({"s": sort, "v": value, "i": last_id})
    response = admin.get("/issues", params={"sort": sort, "cursor": cursor})
    assert_error(response, 422, "invalid_payload")


def test_hand_made_occurrence_cursor_with_a_naive_time_is_invalid(
    admin: TestClient, app: FastAPI
) -> None:
    group = make_group(ctx_of(app))
    cursor = cursor_of({"s": "detection_time", "v": {"t": "2026-01-01T00:00:00"}, "i": "a" * 32})
    response = admin.get(f"/issues/{group.id}/occurrences", params={"cursor": cursor})
    assert_error(response, 422, "invalid_payload")


def test_stream_cursor_made_by_the_service_still_pages(admin: TestClient, app: FastAPI) -> None:
    for _ in range(3):
        make_group(ctx_of(app))
    first = admin.get("/issues", params={"limit": 2, "sort": "times_seen"}).json()
    second = admin.get(
        "/issues", params={"limit": 2, "sort": "times_seen", "cursor": first["next_cursor"]}
    )
    assert second.status_code == 200
    assert len(first["data"]) + len(second.json()["data"]) == 3


def test_time_filter_overflowing_utc_is_invalid(admin: TestClient) -> None:
    response = admin.get("/issues", params={"first_seen_after": OVERFLOWING_TIME})
    assert_error(response, 422, "invalid_payload")


def test_ignore_until_time_overflowing_utc_is_invalid(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app))
    body = {
        "status": "ignored",
        "substatus": "archived_until_condition_met",
        "ignore_until": {"until": OVERFLOWING_TIME},
    }
    assert_error(admin.patch(f"/issues/{group.id}", json=body), 422, "invalid_payload")


@pytest.mark.parametrize(
    "detection_time", [OVERFLOWING_TIME, "0001-01-01T00:00:00-14:00", "1969-12-31T23:59:59Z"]
)
def test_detection_time_outside_the_epoch_range_is_invalid(
    admin: TestClient, detection_time: str
) -> None:
    response = admin.post("/occurrences", json=occurrence(detection_time=detection_time))
    error = assert_error(response, 422, "invalid_payload")
    assert error["details"] == {"field": "detection_time"}


def test_pending_window_of_the_latest_time_does_not_overflow(admin: TestClient) -> None:
    # performance_n_plus_one_db_queries has a 24-hour noise window: its end is past datetime.max.
    body = occurrence(type=1006, detection_time="9999-12-31T23:00:00Z")
    response = admin.post("/occurrences", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "pending"


@pytest.mark.parametrize(
    "overrides",
    [
        {"issue_title": "a\x00b"},
        {"fingerprint": ["fp\x00"]},
        {"evidence_data": {"k": "\x00"}},
        {"evidence_data": {"k\x00": "v"}},
        {"culprit": "\x00"},
    ],
)
def test_nul_characters_in_an_occurrence_are_invalid(
    admin: TestClient, overrides: dict[str, Any]
) -> None:
    # PostgreSQL cannot store NUL in text or JSONB: refused on both databases alike.
    assert_error(admin.post("/occurrences", json=occurrence(**overrides)), 422, "invalid_payload")


@pytest.mark.parametrize(
    "extra",
    [
        {"activity_data": {"a": "\x00"}},
        {"activity_data": {"a": 2**70}},
        {"fingerprint": ["fp\x00"]},
        {"detector_id": "det\x00"},
    ],
)
def test_unstorable_status_change_is_invalid(
    admin: TestClient, app: FastAPI, extra: dict[str, Any]
) -> None:
    make_group(ctx_of(app), fingerprint="fp")
    body = {"project_id": 1, "fingerprint": ["fp"], "new_status": "resolved", **extra}
    assert_error(admin.post("/status-changes", json=body), 422, "invalid_payload")


def test_status_change_of_a_project_with_a_64_bit_id_records_activity(
    admin: TestClient, app: FastAPI
) -> None:
    # activities.project_id was 32-bit on PostgreSQL: this answered 500 there.
    project = make_project(ctx_of(app), id=2**40)
    make_group(ctx_of(app), fingerprint="big", project_id=project.id)
    body = {"project_id": project.id, "fingerprint": ["big"], "new_status": "resolved"}
    response = admin.post("/status-changes", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["activity"]["type"] == "set_resolved"
