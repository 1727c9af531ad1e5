"""`POST /status-changes`: lookup, validation, activity types, no-op and repeated ids."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.status_changes.schemas import StatusChangeBriefOut, StatusChangeOut
from app.status_changes.service import apply_status_change
from tests.builders import ctx_of, group_row, make_group, make_key, make_organization, make_project
from tests.conftest import assert_error, auth


def change(fingerprint: str, status: Any, substatus: Any = None, **extra: Any) -> dict[str, Any]:
    body = {
        "fingerprint": [fingerprint],
        "project_id": 1,
        "new_status": status,
        "new_substatus": substatus,
    }
    body.update(extra)
    return body


def activity_types(admin: TestClient, issue_id: int) -> list[str]:
    return [a["type"] for a in admin.get(f"/issues/{issue_id}/activity").json()["data"]]


def test_resolve_records_activity_with_its_data(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app), fingerprint="boom")
    response = admin.post(
        "/status-changes",
        json=change("boom", "resolved", activity_data={"reason": "fixed"}, detector_id="d1"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] is True
    assert body["issue"]["id"] == group.id
    assert body["issue"]["status"] == "resolved"
    assert body["issue"]["substatus"] is None
    assert body["issue"]["resolved_at"] is not None
    activity = body["activity"]
    assert activity["type"] == "set_resolved"
    assert activity["data"] == {"reason": "fixed"}
    assert activity["actor"] == "detector:d1"
    assert activity["issue_id"] == group.id
    assert activity_types(admin, group.id) == ["set_resolved"]


@pytest.mark.parametrize(
    ("start", "status", "substatus", "activity", "answer"),
    [
        ((0, 3), 1, None, "set_resolved", ("resolved", None)),
        ((0, 3), "ignored", "archived_forever", "set_ignored", ("ignored", "archived_forever")),
        ((2, 1), 0, 2, "set_escalating", ("unresolved", "escalating")),
        ((1, None), "unresolved", "regressed", "set_regression", ("unresolved", "regressed")),
        ((0, 2), "unresolved", "ongoing", "auto_set_ongoing", ("unresolved", "ongoing")),
        ((0, 6), "unresolved", "ongoing", "set_unresolved", ("unresolved", "ongoing")),
        ((0, 7), "unresolved", "ongoing", "set_unresolved", ("unresolved", "ongoing")),
        ((1, None), "unresolved", "ongoing", "set_unresolved", ("unresolved", "ongoing")),
        ((2, 5), "0", "3", "set_unresolved", ("unresolved", "ongoing")),
    ],
)
def test_every_activity_type(
    admin: TestClient,
    app: FastAPI,
    start: tuple[int, int | None],
    status: Any,
    substatus: Any,
    activity: str,
    answer: tuple[str, str | None],
) -> None:
    make_group(ctx_of(app), fingerprint="fp", status=start[0], substatus=start[1])
    response = admin.post("/status-changes", json=change("fp", status, substatus))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["activity"]["type"] == activity
    assert (body["issue"]["status"], body["issue"]["substatus"]) == answer


@pytest.mark.parametrize(
    ("status", "substatus", "http", "code"),
    [
        ("unresolved", None, 422, "missing_substatus"),
        ("ignored", "", 422, "missing_substatus"),
        ("resolved", "ongoing", 422, "unexpected_substatus"),
        ("unresolved", "new", 422, "invalid_substatus"),
        ("unresolved", "archived_forever", 422, "invalid_substatus"),
        ("ignored", "whatever", 422, "invalid_substatus"),
        ("deleted", None, 422, "unsupported_status"),
        (9, 3, 422, "unsupported_status"),
        ("unresolved", "escalating", 409, "invalid_transition"),
    ],
)
def test_rule_violations_answer_spec_codes(
    admin: TestClient, app: FastAPI, status: Any, substatus: Any, http: int, code: str
) -> None:
    group = make_group(ctx_of(app), fingerprint="fp", substatus=3)
    assert_error(admin.post("/status-changes", json=change("fp", status, substatus)), http, code)
    assert activity_types(admin, group.id) == []
    assert group_row(ctx_of(app), group.id).version == group.version


def test_unknown_fingerprint_is_issue_not_found(admin: TestClient, app: FastAPI) -> None:
    make_group(ctx_of(app), fingerprint="known")
    assert_error(
        admin.post("/status-changes", json=change("unknown", "resolved")), 404, "issue_not_found"
    )


def test_issue_is_found_by_first_fingerprint_element_only(admin: TestClient, app: FastAPI) -> None:
    make_group(ctx_of(app), fingerprint="second")
    body = change("first", "resolved")
    body["fingerprint"] = ["first", "second"]
    assert_error(admin.post("/status-changes", json=body), 404, "issue_not_found")


def test_issues_are_per_project(admin: TestClient, app: FastAPI) -> None:
    other = make_project(ctx_of(app))
    make_group(ctx_of(app), fingerprint="fp", project_id=other.id)
    assert_error(
        admin.post("/status-changes", json=change("fp", "resolved")), 404, "issue_not_found"
    )
    body = change("fp", "resolved", project_id=other.id)
    assert admin.post("/status-changes", json=body).json()["changed"] is True


def test_unknown_project_is_project_not_found(admin: TestClient, app: FastAPI) -> None:
    body = change("fp", "resolved", project_id=424242)
    assert_error(admin.post("/status-changes", json=body), 404, "project_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"project_id": 1, "new_status": "resolved"},
        {"fingerprint": [], "project_id": 1, "new_status": "resolved"},
        {"fingerprint": [""], "project_id": 1, "new_status": "resolved"},
        {"fingerprint": ["fp"], "new_status": "resolved"},
        {"fingerprint": ["fp"], "project_id": 1},
    ],
)
def test_malformed_payload_is_invalid_payload(admin: TestClient, body: dict[str, Any]) -> None:
    assert_error(admin.post("/status-changes", json=body), 422, "invalid_payload")


def test_same_status_is_no_change(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app), fingerprint="fp", substatus=3)
    response = admin.post("/status-changes", json=change("fp", 0, "ongoing", id="a1"))
    assert response.status_code == 200
    body = response.json()
    assert body["changed"] is False
    assert body["activity"] is None
    assert body["issue"]["status"] == "unresolved"
    assert activity_types(admin, group.id) == []
    assert group_row(ctx_of(app), group.id).version == group.version


def test_repeated_id_answers_the_first_answer(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app), fingerprint="fp", substatus=3)
    first = admin.post("/status-changes", json=change("fp", "resolved", id="change-1"))
    assert first.status_code == 200
    # Someone unresolves it meanwhile; replaying the id must not resolve it again.
    admin.post("/status-changes", json=change("fp", "unresolved", "ongoing"))
    again = admin.post("/status-changes", json=change("fp", "resolved", id="change-1"))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert activity_types(admin, group.id) == ["set_unresolved", "set_resolved"]
    assert group_row(ctx_of(app), group.id).status == 0


def test_ingest_scope_and_tenancy(client: TestClient, app: FastAPI) -> None:
    ctx = ctx_of(app)
    make_group(ctx, fingerprint="fp")
    reader = make_key(ctx, scopes=("read", "triage"))
    assert_error(
        client.post("/status-changes", json=change("fp", "resolved"), headers=auth(reader)),
        403,
        "forbidden",
    )
    org = make_organization(ctx)
    outsider = make_key(ctx, organization_id=org.id, scopes=("ingest",))
    assert_error(
        client.post("/status-changes", json=change("fp", "resolved"), headers=auth(outsider)),
        403,
        "forbidden",
    )
    other = make_project(ctx)
    limited = make_key(ctx, scopes=("ingest",), project_ids=[other.id])
    assert_error(
        client.post("/status-changes", json=change("fp", "resolved"), headers=auth(limited)),
        403,
        "forbidden",
    )
    assert_error(
        client.post("/status-changes", json=change("fp", "resolved")), 401, "unauthenticated"
    )
    ingester = make_key(ctx, scopes=("ingest",))
    response = client.post("/status-changes", json=change("fp", "resolved"), headers=auth(ingester))
    assert response.status_code == 200
    assert response.json()["activity"]["type"] == "set_resolved"
    group = make_group(ctx, fingerprint="fp2")
    full = make_key(ctx, scopes=("ingest", "read"))
    response = client.post("/status-changes", json=change("fp2", "resolved"), headers=auth(full))
    assert response.json()["activity"]["actor"].startswith("key:")
    assert response.json()["issue"]["id"] == group.id


def test_service_function_answers_like_the_endpoint(app: FastAPI, admin: TestClient) -> None:
    from app.auth.principal import Principal

    ctx = ctx_of(app)
    make_group(ctx, fingerprint="fp", substatus=3)
    principal = Principal.admin()
    payload = change("fp", "ignored", "archived_forever", payload_type="status_change")
    status, body = apply_status_change(ctx, principal, payload)
    assert status == 200
    assert body["changed"] is True
    assert body["activity"]["type"] == "set_ignored"
    status, body = apply_status_change(ctx, principal, change("nope", "resolved"))
    assert (status, body["error"]["code"]) == (404, "issue_not_found")
    status, body = apply_status_change(ctx, principal, {"project_id": 1})
    assert (status, body["error"]["code"]) == (422, "invalid_payload")
    reader = Principal(is_admin=False, organization_id=1, scopes=frozenset({"read"}))
    status, body = apply_status_change(ctx, reader, change("fp", "resolved"))
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_escalating_raises_priority_unless_locked(admin: TestClient, app: FastAPI) -> None:
    ctx = ctx_of(app)
    make_group(ctx, fingerprint="low", status=2, substatus=1, priority=25, initial_priority=25)
    make_group(ctx, fingerprint="med", status=2, substatus=1, priority=50)
    make_group(ctx, fingerprint="lock", status=2, substatus=1, priority=25, priority_locked=True)
    answers = {
        fp: admin.post("/status-changes", json=change(fp, "unresolved", "escalating")).json()
        for fp in ("low", "med", "lock")
    }
    assert answers["low"]["issue"]["priority"] == "medium"
    assert answers["med"]["issue"]["priority"] == "high"
    assert answers["lock"]["issue"]["priority"] == "low"
    back = admin.post("/status-changes", json=change("low", "unresolved", "ongoing")).json()
    assert back["activity"]["type"] == "auto_set_ongoing"
    assert back["issue"]["priority"] == "low"


def test_ignoring_until_escalating_computes_a_forecast(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app), fingerprint="fp", substatus=3)
    admin.post("/status-changes", json=change("fp", "ignored", "archived_until_escalating"))
    forecast = admin.get(f"/issues/{group.id}/forecast").json()
    assert forecast["issue_id"] == group.id
    assert forecast["start_date"] == "2026-11-02"
    assert forecast["computed_at"] is not None
    assert forecast["ceilings"] == []


@pytest.mark.parametrize(
    "body",
    [
        change("fp", "resolved", project_id=2**70),
        change("fp", "resolved", detector_id="d" * 81),
        change("fp", "resolved", id="x" * 65),
        change("fp", "resolved", activity_data=[1, 2]),
    ],
)
def test_out_of_range_fields_are_invalid_payload(
    admin: TestClient, app: FastAPI, body: dict[str, Any]
) -> None:
    make_group(ctx_of(app), fingerprint="fp")
    assert_error(admin.post("/status-changes", json=body), 422, "invalid_payload")


def test_project_zero_is_not_found(admin: TestClient) -> None:
    body = change("fp", "resolved", project_id=0)
    assert_error(admin.post("/status-changes", json=body), 404, "project_not_found")


def test_numeric_detector_id_is_the_actor(admin: TestClient, app: FastAPI) -> None:
    make_group(ctx_of(app), fingerprint="fp")
    body = change("fp", "resolved", detector_id=10**90)
    activity = admin.post("/status-changes", json=body).json()["activity"]
    assert activity["actor"] == f"detector:{10**90}"


def test_concurrent_repeats_of_one_id_record_once(admin: TestClient, app: FastAPI) -> None:
    import json
    import threading

    from app.auth.principal import Principal

    ctx = ctx_of(app)
    first = make_group(ctx, fingerprint="a", substatus=3)
    second = make_group(ctx, fingerprint="b", substatus=3)
    barrier = threading.Barrier(4)
    answers: list[tuple[int, dict[str, Any]]] = []

    def send(fingerprint: str) -> None:
        barrier.wait()
        payload = change(fingerprint, "resolved", id="same-id")
        answers.append(apply_status_change(ctx, Principal.admin(), payload))

    threads = [threading.Thread(target=send, args=(fp,)) for fp in ("a", "b", "a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 4
    assert {status for status, _ in answers} == {200}
    assert len({json.dumps(body, sort_keys=True) for _, body in answers}) == 1
    resolved = [g.id for g in (first, second) if group_row(ctx, g.id).status == 1]
    assert len(resolved) == 1
    assert sum(len(activity_types(admin, g.id)) for g in (first, second)) == 1


# -- what a key without `read` is told (issue 16, finding 10) -----------------------------------

BRIEF_KEYS = {"issue", "changed", "activity"}


def assert_brief(answer: dict[str, Any], issue_id: int, activity: str | None) -> None:
    """The change only: the issue's id, status and substatus, the activity's id and type."""
    assert set(answer) == BRIEF_KEYS, answer
    assert set(answer["issue"]) == {"id", "status", "substatus"}, answer
    assert answer["issue"]["id"] == issue_id
    if activity is None:
        assert answer["activity"] is None
    else:
        assert set(answer["activity"]) == {"id", "type"}, answer
        assert answer["activity"]["type"] == activity
    StatusChangeBriefOut.model_validate(answer)


def test_ingest_only_key_gets_the_change_not_the_issue(client: TestClient, app: FastAPI) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, fingerprint="fp", title="secret title", culprit="secret.culprit")
    ingester = auth(make_key(ctx, scopes=("ingest",)))
    body = change("fp", "ignored", "archived_forever", activity_data={"why": "noise"})
    response = client.post("/status-changes", json=body, headers=ingester)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_brief(answer, group.id, "set_ignored")
    assert answer["issue"] | {"id": 0} == {
        "id": 0,
        "status": "ignored",
        "substatus": "archived_forever",
    }
    assert "secret" not in response.text
    unchanged = client.post("/status-changes", json=body, headers=ingester).json()
    assert_brief(unchanged, group.id, None)
    assert unchanged["changed"] is False


def test_key_with_read_still_gets_the_issue(client: TestClient, app: FastAPI) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, fingerprint="fp", title="visible title")
    reader = auth(make_key(ctx, scopes=("ingest", "read")))
    answer = client.post("/status-changes", json=change("fp", "resolved"), headers=reader).json()
    StatusChangeOut.model_validate(answer)
    assert answer["issue"]["title"] == "visible title"
    assert answer["issue"]["id"] == group.id
    assert answer["activity"]["actor"].startswith("key:")


def test_repeated_id_is_answered_briefly_to_a_key_without_read(
    client: TestClient, app: FastAPI
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, fingerprint="fp", title="secret title")
    reader = auth(make_key(ctx, scopes=("ingest", "read")))
    ingester = auth(make_key(ctx, scopes=("ingest",)))
    body = change("fp", "resolved", id="change-1")
    first = client.post("/status-changes", json=body, headers=reader).json()
    assert first["issue"]["title"] == "secret title"
    again = client.post("/status-changes", json=body, headers=ingester)
    assert_brief(again.json(), group.id, "set_resolved")
    assert again.json()["activity"]["id"] == first["activity"]["id"]
    assert "secret" not in again.text
    # The stored answer is whole: a key with `read` repeating the id still gets the issue.
    assert client.post("/status-changes", json=body, headers=reader).json() == first


def test_ingest_endpoint_answers_a_key_without_read_briefly(
    client: TestClient, app: FastAPI
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, fingerprint="fp", title="secret title", substatus=3)
    ingester = auth(make_key(ctx, scopes=("ingest",)))
    one = change("fp", "resolved", payload_type="status_change")
    response = client.post("/ingest", json=one, headers=ingester)
    assert response.status_code == 200, response.text
    assert_brief(response.json(), group.id, "set_resolved")
    batch = [change("fp", "unresolved", "ongoing", payload_type="status_change")]
    response = client.post("/ingest", json=batch, headers=ingester)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result.pop("payload_type") == "status_change"
    assert_brief(result, group.id, "set_unresolved")
    assert "secret" not in response.text
