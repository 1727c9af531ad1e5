"""The lifecycle end to end, through the real ingest path (`POST /occurrences`, `/ingest`)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.jobs.runner import run_all_once
from app.jobs.schedule import job_named
from app.models import WebhookDelivery
from tests.builders import ctx_of, make_project, occurrence
from tests.conftest import FakeClock, assert_error


def at(moment: datetime, **overrides: Any) -> dict[str, Any]:
    body = occurrence(detection_time=moment.isoformat(), **overrides)
    body["event"]["project_id"] = body["project_id"]
    return body


def post_many(admin: TestClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = admin.post("/occurrences/batch", json={"occurrences": bodies})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def subscribe(admin: TestClient, events: list[str]) -> int:
    """A webhook of project 1 for ``events``; its id."""
    hook = admin.post(
        "/admin/projects/1/webhooks",
        json={"url": "https://hooks.example.com/x", "secret": "s3cret", "events": events},
    )
    assert hook.status_code == 201, hook.text
    return int(hook.json()["id"])


def activity(admin: TestClient, issue_id: int) -> list[str]:
    return [a["type"] for a in admin.get(f"/issues/{issue_id}/activity").json()["data"]]


def test_get_etag_guards_patch(admin: TestClient, clock: FakeClock) -> None:
    issue_id = post_many(admin, [at(clock.now)])[0]["issue_id"]
    tag = admin.get(f"/issues/{issue_id}").headers["ETag"]
    ok = admin.patch(f"/issues/{issue_id}", json={"priority": "low"}, headers={"If-Match": tag})
    assert ok.status_code == 200
    assert admin.get(f"/issues/{issue_id}").headers["ETag"] == ok.headers["ETag"]
    change = {"fingerprint": ["fp-1"], "project_id": 1, "new_status": "resolved"}
    assert admin.post("/status-changes", json=change).json()["changed"] is True
    stale = admin.patch(
        f"/issues/{issue_id}",
        json={"status": "unresolved", "substatus": "ongoing"},
        headers={"If-Match": ok.headers["ETag"]},
    )
    assert_error(stale, 412, "precondition_failed")
    assert admin.get(f"/issues/{issue_id}").json()["status"] == "resolved"


def test_archived_issue_escalates_when_an_hour_exceeds_the_ceiling(
    admin: TestClient, clock: FakeClock
) -> None:
    issue_id = post_many(admin, [at(clock.now)])[0]["issue_id"]
    ignored = admin.patch(
        f"/issues/{issue_id}", json={"status": "ignored", "substatus": "archived_until_escalating"}
    )
    assert ignored.status_code == 200
    assert admin.get(f"/issues/{issue_id}/forecast").json()["ceilings"] == []
    clock.advance(hours=2)
    results = post_many(admin, [at(clock.now) for _ in range(10)])
    assert {r["outcome"] for r in results} == {"grouped"}
    assert admin.get(f"/issues/{issue_id}").json()["status"] == "ignored"
    post_many(admin, [at(clock.now)])
    body = admin.get(f"/issues/{issue_id}").json()
    assert (body["status"], body["substatus"], body["priority"]) == (
        "unresolved",
        "escalating",
        "high",
    )
    assert activity(admin, issue_id) == ["set_escalating", "set_ignored"]


def test_condition_count_escalates_through_ingest(admin: TestClient, clock: FakeClock) -> None:
    issue_id = post_many(admin, [at(clock.now)])[0]["issue_id"]
    admin.patch(f"/issues/{issue_id}", json={"ignore_until": {"count": 2, "window_seconds": 60}})
    clock.advance(minutes=1)
    post_many(admin, [at(clock.now), at(clock.now)])
    assert admin.get(f"/issues/{issue_id}").json()["status"] == "ignored"
    post_many(admin, [at(clock.now)])
    assert admin.get(f"/issues/{issue_id}").json()["substatus"] == "escalating"


def test_until_passes_then_next_occurrence_is_ongoing(admin: TestClient, clock: FakeClock) -> None:
    issue_id = post_many(admin, [at(clock.now)])[0]["issue_id"]
    until = (clock.now + timedelta(hours=1)).isoformat()
    admin.patch(f"/issues/{issue_id}", json={"ignore_until": {"until": until}})
    clock.advance(hours=2)
    post_many(admin, [at(clock.now)])
    body = admin.get(f"/issues/{issue_id}").json()
    assert (body["status"], body["substatus"]) == ("unresolved", "ongoing")


def test_auto_resolve_then_regression(admin: TestClient, app: FastAPI, clock: FakeClock) -> None:
    project = make_project(ctx_of(app), resolve_age_hours=1)
    first = post_many(admin, [at(clock.now, project_id=project.id)])[0]
    clock.advance(hours=1, seconds=1)
    assert run_all_once(ctx_of(app))["auto_resolve"]["resolved"] == 1
    body = admin.get(f"/issues/{first['issue_id']}").json()
    assert body["status"] == "resolved"
    assert body["resolved_at"] is not None
    again = post_many(admin, [at(clock.now, project_id=project.id)])[0]
    assert again["outcome"] == "regressed"
    body = admin.get(f"/issues/{first['issue_id']}").json()
    assert (body["status"], body["substatus"]) == ("unresolved", "regressed")
    assert activity(admin, first["issue_id"]) == ["set_regression", "set_resolved_by_age"]
    clock.advance(days=7, seconds=1)
    ongoing = job_named("ongoing")
    assert ongoing.run(ctx_of(app)) == {"ongoing": 1}
    assert admin.get(f"/issues/{first['issue_id']}").json()["substatus"] == "ongoing"


def test_new_issue_becomes_ongoing_after_a_week(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    issue_id = post_many(admin, [at(clock.now)])[0]["issue_id"]
    clock.advance(days=7)
    run_all_once(ctx_of(app))
    assert admin.get(f"/issues/{issue_id}").json()["substatus"] == "new"
    clock.advance(seconds=1)
    run_all_once(ctx_of(app))
    assert admin.get(f"/issues/{issue_id}").json()["substatus"] == "ongoing"
    assert activity(admin, issue_id) == ["auto_set_ongoing"]


def test_moving_a_regressed_issue_to_ongoing_by_hand_is_set_unresolved(
    admin: TestClient, clock: FakeClock
) -> None:
    hook_id = subscribe(admin, ["issue.unresolved"])
    by_detector = post_many(admin, [at(clock.now, fingerprint=["d"])])[0]["issue_id"]
    by_person = post_many(admin, [at(clock.now, fingerprint=["p"])])[0]["issue_id"]
    for issue_id in (by_detector, by_person):
        for step in ({"status": "resolved"}, {"status": "unresolved", "substatus": "regressed"}):
            assert admin.patch(f"/issues/{issue_id}", json=step).status_code == 200
    change = {"fingerprint": ["d"], "project_id": 1, "new_status": "unresolved"}
    answer = admin.post("/status-changes", json=dict(change, new_substatus="ongoing"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["activity"]["type"] == "set_unresolved"
    patched = admin.patch(f"/issues/{by_person}", json={"status": "unresolved", "substatus": 3})
    assert patched.json()["substatus"] == "ongoing"
    for issue_id in (by_detector, by_person):
        assert activity(admin, issue_id)[0] == "set_unresolved"
    # The issues were unresolved (regressed) already: nobody is told they are unresolved again.
    deliveries = admin.get(f"/admin/webhooks/{hook_id}/deliveries").json()["data"]
    assert deliveries == []


def test_status_change_through_ingest(admin: TestClient, clock: FakeClock) -> None:
    post_many(admin, [at(clock.now, fingerprint=["checkout-timeout"])])
    change = {
        "payload_type": "status_change",
        "id": str(uuid.uuid4()),
        "fingerprint": ["checkout-timeout"],
        "project_id": 1,
        "new_status": 1,
        "new_substatus": None,
    }
    one = admin.post("/ingest", json=change)
    assert one.status_code == 200, one.text
    assert one.json()["activity"]["type"] == "set_resolved"
    many = admin.post("/ingest", json=[change, dict(change, fingerprint=["nope"], id=None)])
    assert many.status_code == 200
    results = many.json()["results"]
    assert results[0]["payload_type"] == "status_change"
    assert "issue_not_found" in str(results[1])
    assert_error(
        admin.post("/status-changes", json=dict(change, new_status="unresolved", id=None)),
        422,
        "missing_substatus",
    )


def test_lifecycle_changes_queue_their_webhook_events(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    hook_id = subscribe(
        admin,
        [
            "issue.resolved",
            "issue.ignored",
            "issue.unresolved",
            "issue.escalating",
            "issue.regressed",
        ],
    )
    issue_id = post_many(admin, [at(clock.now)])[0]["issue_id"]
    steps = [
        {"status": "resolved"},
        {"status": "unresolved", "substatus": "ongoing"},
        {"status": "ignored", "substatus": "archived_until_escalating"},
    ]
    for step in steps:
        assert admin.patch(f"/issues/{issue_id}", json=step).status_code == 200
    post_many(admin, [at(clock.now) for _ in range(11)])
    deliveries = admin.get(f"/admin/webhooks/{hook_id}/deliveries").json()["data"]
    # Same fake-clock timestamp for all: compare without order.
    assert sorted(d["event"] for d in deliveries) == [
        "issue.escalating",
        "issue.ignored",
        "issue.resolved",
        "issue.unresolved",
    ]


def test_a_detectors_status_change_queues_its_webhook_with_the_issue_as_committed(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    subscribe(admin, ["issue.resolved"])
    issue_id = post_many(admin, [at(clock.now)])[0]["issue_id"]
    change = {"fingerprint": ["fp-1"], "project_id": 1, "new_status": "resolved"}
    answer = admin.post("/status-changes", json=change).json()
    assert answer["changed"] is True
    with ctx_of(app).db.read() as session:
        rows = list(session.scalars(select(WebhookDelivery)))
    assert [(r.event, r.group_id) for r in rows] == [("issue.resolved", issue_id)]
    body = json.loads(rows[0].body)
    assert body["issue"] == answer["issue"]
