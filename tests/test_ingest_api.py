"""Ingest over HTTP: every outcome and error code of SPEC §5 and the grouping rules of §6."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.models import HourlyCount, Project
from tests.builders import ctx_of, occurrence
from tests.conftest import assert_error


def post(admin: TestClient, payload: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/occurrences", json=payload)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def issue(admin: TestClient, issue_id: int) -> dict[str, Any]:
    response = admin.get(f"/issues/{issue_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_first_occurrence_creates_new_unresolved_issue(admin: TestClient) -> None:
    payload = occurrence(priority="high")
    answer = post(admin, payload)
    assert answer["outcome"] == "created"
    assert answer["occurrence_id"] == payload["id"]
    body = issue(admin, answer["issue_id"])
    assert body["status"] == "unresolved" and body["substatus"] == "new"
    assert body["times_seen"] == 1 and body["priority"] == "high"
    assert body["type"] == "error" and body["category"] == "error" and body["category_id"] == 1
    assert body["short_id"] == "DEFAULT-1"
    latest = body["latest_occurrence"]
    assert latest["id"] == payload["id"]
    assert latest["important_evidence"] == {
        "name": "Duration",
        "value": "1234 ms",
        "important": True,
    }


def test_second_occurrence_joins_existing_issue(admin: TestClient) -> None:
    first = post(admin, occurrence())
    second = post(admin, occurrence())
    assert second["outcome"] == "grouped"
    assert second["issue_id"] == first["issue_id"]
    assert issue(admin, first["issue_id"])["times_seen"] == 2


def test_priority_defaults_to_the_type(admin: TestClient) -> None:
    answer = post(admin, occurrence(type=4001))
    assert issue(admin, answer["issue_id"])["priority"] == "high"


def test_out_of_order_occurrences_move_first_and_last_seen(admin: TestClient) -> None:
    t = datetime(2026, 11, 2, 10, tzinfo=UTC)
    first = post(admin, occurrence(detection_time=t.isoformat(), issue_title="middle"))
    post(admin, occurrence(detection_time=(t - timedelta(hours=5)).isoformat(), issue_title="old"))
    post(
        admin,
        occurrence(
            detection_time=(t + timedelta(hours=1)).isoformat(), issue_title="newest", level="fatal"
        ),
    )
    post(
        admin, occurrence(detection_time=(t - timedelta(hours=1)).isoformat(), issue_title="older")
    )
    body = issue(admin, first["issue_id"])
    assert body["times_seen"] == 4
    assert body["first_seen"] == "2026-11-02T05:00:00Z"
    assert body["last_seen"] == "2026-11-02T11:00:00Z"
    assert body["title"] == "newest" and body["level"] == "fatal"


def test_duplicate_id_is_answered_without_counting(admin: TestClient) -> None:
    payload = occurrence()
    first = post(admin, payload)
    again = post(admin, dict(payload, id=str(uuid.UUID(payload["id"]))))
    assert again["outcome"] == "duplicate" and again["issue_id"] == first["issue_id"]
    assert issue(admin, first["issue_id"])["times_seen"] == 1


def test_duplicate_inside_one_batch_counts_once(admin: TestClient) -> None:
    payload = occurrence()
    results = admin.post("/occurrences/batch", json={"occurrences": [payload, payload]}).json()[
        "results"
    ]
    assert [r["outcome"] for r in results] == ["created", "duplicate"]
    assert issue(admin, results[0]["issue_id"])["times_seen"] == 1


def test_one_batch_changes_each_issue_its_own_way(admin: TestClient, app: FastAPI) -> None:
    """Issues joined in one batch get different changes (the set-based update, by shape)."""
    t = datetime(2026, 11, 2, 10, tzinfo=UTC)
    ids = {
        name: post(admin, occurrence(fingerprint=[name], detection_time=t.isoformat()))["issue_id"]
        for name in ("older", "newer", "louder", "same")
    }
    batch = [
        occurrence(fingerprint=["older"], detection_time=(t - timedelta(hours=3)).isoformat()),
        occurrence(
            fingerprint=["newer"],
            detection_time=(t + timedelta(hours=2)).isoformat(),
            issue_title="newest title",
            subtitle="newest subtitle",
            culprit="newest.culprit",
            level="fatal",
        ),
        occurrence(fingerprint=["louder"], detection_time=t.isoformat(), priority="high"),
        occurrence(fingerprint=["same"], detection_time=t.isoformat()),
        occurrence(fingerprint=["same"], detection_time=t.isoformat()),
        occurrence(fingerprint=["older"], detection_time=(t - timedelta(hours=1)).isoformat()),
    ]
    results = admin.post("/occurrences/batch", json={"occurrences": batch}).json()["results"]
    assert [r["outcome"] for r in results] == ["grouped"] * 6
    older, newer = issue(admin, ids["older"]), issue(admin, ids["newer"])
    louder, same = issue(admin, ids["louder"]), issue(admin, ids["same"])
    assert older["times_seen"] == 3 and older["first_seen"] == "2026-11-02T07:00:00Z"
    assert older["last_seen"] == "2026-11-02T10:00:00Z" and older["title"] == "Slow thing"
    assert newer["times_seen"] == 2 and newer["last_seen"] == "2026-11-02T12:00:00Z"
    assert newer["first_seen"] == "2026-11-02T10:00:00Z"
    assert (newer["title"], newer["culprit"], newer["level"]) == (
        "newest title",
        "newest.culprit",
        "fatal",
    )
    assert newer["latest_occurrence"]["id"] == batch[1]["id"]
    assert louder["times_seen"] == 2 and louder["priority"] == "high"
    assert same["times_seen"] == 3 and same["priority"] == older["priority"]
    with ctx_of(app).db.read() as session:
        counts = dict(
            session.execute(
                select(HourlyCount.group_id, func.sum(HourlyCount.count)).group_by(
                    HourlyCount.group_id
                )
            ).all()
        )
    assert counts == {ids["older"]: 3, ids["newer"]: 2, ids["louder"]: 2, ids["same"]: 3}


def test_first_known_fingerprint_element_decides_and_free_ones_are_linked(
    admin: TestClient,
) -> None:
    a = post(admin, occurrence(fingerprint=["a", "b"]))
    via_b = post(admin, occurrence(fingerprint=["b"]))
    assert via_b["issue_id"] == a["issue_id"]
    c = post(admin, occurrence(fingerprint=["c", "a"]))
    assert c["outcome"] == "grouped" and c["issue_id"] == a["issue_id"]
    # Joining linked "c" (no issue had it) to a's issue.
    via_c = post(admin, occurrence(fingerprint=["c"]))
    assert via_c["outcome"] == "grouped" and via_c["issue_id"] == a["issue_id"]


def test_an_element_seen_first_beside_a_known_one_joins_its_issue(admin: TestClient) -> None:
    a = post(admin, occurrence(fingerprint=["a"]))
    ab = post(admin, occurrence(fingerprint=["a", "b"]))
    b = post(admin, occurrence(fingerprint=["b"]))
    assert (ab["outcome"], b["outcome"]) == ("grouped", "grouped")
    assert ab["issue_id"] == b["issue_id"] == a["issue_id"]
    assert issue(admin, a["issue_id"])["times_seen"] == 3


def test_elements_before_the_known_one_are_linked_too(admin: TestClient) -> None:
    a = post(admin, occurrence(fingerprint=["a"]))
    post(admin, occurrence(fingerprint=["x", "a", "y"]))
    for element in ("x", "y"):
        answer = post(admin, occurrence(fingerprint=[element]))
        assert (answer["outcome"], answer["issue_id"]) == ("grouped", a["issue_id"])


def test_an_element_linked_in_a_batch_groups_the_batchs_later_items(admin: TestClient) -> None:
    a = post(admin, occurrence(fingerprint=["a"]))
    items = [occurrence(fingerprint=["a", "b"]), occurrence(fingerprint=["b"])]
    response = admin.post("/occurrences/batch", json={"occurrences": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["grouped", "grouped"]
    assert {r["issue_id"] for r in results} == {a["issue_id"]}


def test_joining_a_resolved_issue_links_its_free_elements(admin: TestClient) -> None:
    # A regression goes through the ORM write path, not the set-based one: it links too.
    a = post(admin, occurrence(fingerprint=["a"]))
    resolved = admin.patch(f"/issues/{a['issue_id']}", json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    ab = post(admin, occurrence(fingerprint=["a", "b"]))
    assert ab["outcome"] == "regressed"
    b = post(admin, occurrence(fingerprint=["b"]))
    assert (b["outcome"], b["issue_id"]) == ("grouped", a["issue_id"])


def test_joining_an_ignored_issue_links_its_free_elements(admin: TestClient) -> None:
    a = post(admin, occurrence(fingerprint=["a"]))
    ignored = admin.patch(
        f"/issues/{a['issue_id']}",
        json={"status": "ignored", "substatus": "archived_forever"},
    )
    assert ignored.status_code == 200, ignored.text
    post(admin, occurrence(fingerprint=["a", "b"]))
    b = post(admin, occurrence(fingerprint=["b"]))
    assert (b["outcome"], b["issue_id"]) == ("grouped", a["issue_id"])
    assert issue(admin, a["issue_id"])["status"] == "ignored"


def test_an_element_of_another_issue_stays_with_it_when_joining(admin: TestClient) -> None:
    a = post(admin, occurrence(fingerprint=["a"]))
    b = post(admin, occurrence(fingerprint=["b"]))
    post(admin, occurrence(fingerprint=["a", "b", "c"]))
    via_b = post(admin, occurrence(fingerprint=["b"]))
    via_c = post(admin, occurrence(fingerprint=["c"]))
    assert via_b["issue_id"] == b["issue_id"] != a["issue_id"]
    assert via_c["issue_id"] == a["issue_id"]


def test_a_dropped_occurrence_links_nothing(admin: TestClient) -> None:
    a = post(admin, occurrence(fingerprint=["a"]))
    dropped = post(admin, occurrence(fingerprint=["a", "b"], type=4001))
    assert (dropped["outcome"], dropped["reason"]) == ("dropped", "type_mismatch")
    b = post(admin, occurrence(fingerprint=["b"]))
    assert b["outcome"] == "created" and b["issue_id"] != a["issue_id"]


def test_element_owned_by_another_issue_is_not_stolen(admin: TestClient) -> None:
    first = post(admin, occurrence(fingerprint=["x"]))
    second = post(admin, occurrence(fingerprint=["y"]))
    joined = post(admin, occurrence(fingerprint=["y", "x"]))
    assert joined["issue_id"] == second["issue_id"] != first["issue_id"]


def test_issues_are_per_project(admin: TestClient) -> None:
    admin.app.state.ctx  # noqa: B018
    with admin.app.state.ctx.db.write() as session:  # type: ignore[attr-defined]
        session.add(Project(id=2, organization_id=1, slug="other", name="Other"))
        session.commit()
    one = post(admin, occurrence(fingerprint=["same"]))
    two = post(admin, occurrence(fingerprint=["same"], project_id=2))
    assert two["outcome"] == "created" and two["issue_id"] != one["issue_id"]


def test_other_type_under_same_hash_is_dropped(admin: TestClient) -> None:
    post(admin, occurrence(fingerprint=["shared"]))
    answer = post(admin, occurrence(fingerprint=["shared"], type=4001))
    assert answer["outcome"] == "dropped" and answer["reason"] == "type_mismatch"
    again = post(admin, occurrence(id=answer["occurrence_id"], fingerprint=["fresh"], type=4001))
    assert again["outcome"] == "created"  # a dropped id was not stored


def test_unknown_project_is_404(admin: TestClient) -> None:
    assert_error(
        admin.post("/occurrences", json=occurrence(project_id=99)), 404, "project_not_found"
    )


def test_unregistered_type_is_422(admin: TestClient) -> None:
    assert_error(
        admin.post("/occurrences", json=occurrence(type=424242)), 422, "unknown_issue_type"
    )


def test_event_mismatches_have_their_codes(admin: TestClient) -> None:
    payload = occurrence()
    payload["event"]["project_id"] = 5
    assert_error(admin.post("/occurrences", json=payload), 422, "event_project_mismatch")
    payload = occurrence(event_id=uuid.uuid4().hex)
    payload["event_id"] = uuid.uuid4().hex
    assert_error(admin.post("/occurrences", json=payload), 422, "event_id_mismatch")


def test_event_id_alone_must_name_a_stored_event(admin: TestClient) -> None:
    payload = occurrence()
    del payload["event"]
    payload["event_id"] = uuid.uuid4().hex
    assert_error(admin.post("/occurrences", json=payload), 422, "event_not_found")
    first = occurrence()
    post(admin, first)
    payload["event_id"] = first["event"]["event_id"]
    assert post(admin, payload)["outcome"] == "grouped"


def test_invalid_payload_names_the_field(admin: TestClient) -> None:
    error = assert_error(
        admin.post("/occurrences", json=occurrence(fingerprint=[])), 422, "invalid_payload"
    )
    assert error["details"]["field"] == "fingerprint"
    assert_error(
        admin.post(
            "/occurrences", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "invalid_payload",
    )


def test_a_trailing_newline_is_no_part_of_an_id_or_assignee(admin: TestClient) -> None:
    # "$" of a pattern also matches before a final newline: these answered 500 or were stored.
    payload = occurrence(id=uuid.uuid4().hex + "\n")
    error = assert_error(admin.post("/occurrences", json=payload), 422, "invalid_payload")
    assert error["details"]["field"] == "id"
    # An assignee that is not exactly "user:…" or "team:…" is left out, as any invalid one is.
    answer = post(admin, occurrence(assignee="user:ann\n", fingerprint=["fp-newline"]))
    assert admin.get(f"/issues/{answer['issue_id']}").json()["assignee"] is None
    payload = occurrence()
    payload["event_id"] = payload["event"]["event_id"] = uuid.uuid4().hex + "\n"
    assert_error(admin.post("/occurrences", json=payload), 422, "invalid_payload")


def test_ignored_event_fields_are_listed_and_not_stored(admin: TestClient) -> None:
    payload = occurrence()
    payload["event"]["attachments"] = [{"name": "a.txt"}]
    answer = post(admin, payload)
    assert answer["ignored_fields"] == ["attachments"]
    stored = admin.get(f"/occurrences/{payload['id']}", params={"project_id": 1}).json()
    assert "attachments" not in stored["event"]
    assert stored["event"]["level"] == "warning" and stored["event"]["title"] == "Slow thing"


def test_unknown_top_level_keys_are_listed_as_ignored(admin: TestClient) -> None:
    payload = occurrence(colour="red", tags={"env": "prod"})
    payload["event"]["attachments"] = []
    answer = post(admin, payload)
    assert answer["outcome"] == "created"
    # Unknown top-level keys first, in the order sent, then the event's unkept keys.
    assert answer["ignored_fields"] == ["colour", "tags", "attachments"]
    assert post(admin, payload)["ignored_fields"] == ["colour", "tags", "attachments"]  # duplicate
    assert post(admin, occurrence())["ignored_fields"] == []


def test_unknown_top_level_keys_are_listed_per_batch_item_and_ingest_message(
    admin: TestClient,
) -> None:
    items = [occurrence(colour="red"), occurrence(), occurrence(size=1, payload_type="occurrence")]
    batch = admin.post("/occurrences/batch", json={"occurrences": items})
    assert batch.status_code == 200, batch.text
    assert [r["ignored_fields"] for r in batch.json()["results"]] == [
        ["colour"],
        [],
        ["size", "payload_type"],  # /occurrences takes no payload_type: it is ignored there
    ]
    # On /ingest, payload_type is the message's own key, not an ignored one.
    one = admin.post("/ingest", json=occurrence(payload_type="occurrence", colour="red"))
    assert one.status_code == 202, one.text
    assert one.json()["ignored_fields"] == ["colour"]
    many = admin.post("/ingest", json=[occurrence(colour="red"), occurrence()])
    assert [r["ignored_fields"] for r in many.json()["results"]] == [["colour"], []]


STATUS_CHANGE = {
    "fingerprint": ["fp-1"],
    "project_id": 1,
    "new_status": "resolved",
    "new_substatus": None,
}


def _points_to_status_changes(error: dict[str, Any]) -> None:
    assert "/status-changes" in error["message"] and "/ingest" in error["message"]
    assert '"payload_type": "status_change"' in error["message"]


def test_a_status_change_sent_as_an_occurrence_says_where_to_send_it(admin: TestClient) -> None:
    post(admin, occurrence())
    for body in (STATUS_CHANGE, dict(STATUS_CHANGE, id=uuid.uuid4().hex)):
        error = assert_error(admin.post("/occurrences", json=body), 422, "invalid_payload")
        _points_to_status_changes(error)
        assert error["details"] == {"field": "new_status"}
    tagged = dict(STATUS_CHANGE, payload_type="status_change")
    error = assert_error(admin.post("/occurrences", json=tagged), 422, "invalid_payload")
    _points_to_status_changes(error)
    assert error["details"] == {"field": "payload_type"}
    batch = admin.post("/occurrences/batch", json={"occurrences": [STATUS_CHANGE, occurrence()]})
    assert batch.status_code == 200, batch.text
    rejected, accepted = batch.json()["results"]
    assert (rejected["status"], rejected["code"]) == (422, "invalid_payload")
    _points_to_status_changes(rejected)
    assert accepted["outcome"] == "grouped"
    # On /ingest, a message without payload_type is an occurrence: the same hint.
    untagged = admin.post("/ingest", json=STATUS_CHANGE)
    _points_to_status_changes(assert_error(untagged, 422, "invalid_payload"))
    # Nothing was changed by any of them.
    assert admin.get("/issues").json()["data"][0]["status"] == "unresolved"


def test_a_status_change_on_the_topic_without_payload_type_is_dead_lettered_with_the_hint(
    admin: TestClient, app: FastAPI
) -> None:
    # (``admin``: the application has started, so the built-in types are registered.)
    from app.consumer.batch import InboundMessage, default_ingest, process_batch

    values = [STATUS_CHANGE, occurrence(colour="red")]
    messages = [
        InboundMessage("ingest-occurrences", 0, n, b"k", orjson.dumps(v))
        for n, v in enumerate(values)
    ]
    outcome = process_batch(ctx_of(app), messages, ingest=default_ingest())
    assert outcome.accepted == 1
    [rejection] = outcome.rejected
    assert (rejection.message.offset, rejection.code) == (0, "invalid_payload")
    assert "/status-changes" in rejection.reason and "status_change" in rejection.reason


def test_an_occurrence_with_new_status_and_a_title_is_judged_as_an_occurrence(
    admin: TestClient,
) -> None:
    answer = post(admin, occurrence(new_status="resolved"))
    assert (answer["outcome"], answer["ignored_fields"]) == ("created", ["new_status"])


def test_stored_occurrence_is_returned_normalised(admin: TestClient) -> None:
    raw_id = str(uuid.uuid4())
    post(admin, occurrence(id=raw_id, initial_issue_priority=75, culprit="c" * 250))
    body = admin.get(f"/occurrences/{raw_id}", params={"project_id": 1}).json()
    assert body["id"] == uuid.UUID(raw_id).hex
    assert body["priority"] == "high"
    assert body["culprit"] == "c" * 250
    assert body["detection_time"] == "2026-11-02T11:00:00Z"
    issue_body = issue(admin, body["issue_id"])
    assert len(issue_body["culprit"]) == 200 and issue_body["culprit"].endswith("...")
    assert_error(
        admin.get(f"/occurrences/{uuid.uuid4().hex}", params={"project_id": 1}),
        404,
        "occurrence_not_found",
    )


def test_batch_answers_each_item_in_order(admin: TestClient) -> None:
    items = [
        occurrence(fingerprint=["b1"]),
        {"id": "x"},
        occurrence(fingerprint=["b1"]),
        occurrence(project_id=77),
    ]
    results = admin.post("/occurrences/batch", json={"occurrences": items}).json()["results"]
    assert results[0]["outcome"] == "created"
    assert results[1]["status"] == 422 and results[1]["code"] == "invalid_payload"
    assert results[2]["outcome"] == "grouped"
    assert results[3]["status"] == 404 and results[3]["code"] == "project_not_found"


def test_more_new_issues_than_one_insert_statement_takes_each_get_their_own(
    admin: TestClient,
) -> None:
    # 700 new issues in one transaction: two multi-row inserts on SQLite (500 rows each at
    # most), one insert over arrays on PostgreSQL; each answer names its own issue.
    items = [occurrence(fingerprint=[f"many-{n}"], issue_title=f"t{n}") for n in range(700)]
    results = admin.post("/occurrences/batch", json={"occurrences": items}).json()["results"]
    assert [r["outcome"] for r in results] == ["created"] * 700
    ids = [r["issue_id"] for r in results]
    assert len(set(ids)) == 700
    for n in (0, 499, 500, 699):
        assert issue(admin, ids[n])["title"] == f"t{n}"


def test_batch_over_1000_items_is_rejected(admin: TestClient) -> None:
    items = [{"id": i} for i in range(1001)]
    assert_error(
        admin.post("/occurrences/batch", json={"occurrences": items}), 422, "batch_too_large"
    )


def test_ingest_endpoint_takes_one_message_or_an_array(admin: TestClient) -> None:
    one = admin.post("/ingest", json=dict(occurrence(), payload_type="occurrence"))
    assert one.status_code == 202 and one.json()["outcome"] == "created"
    many = admin.post("/ingest", json=[occurrence(), {"payload_type": "bogus"}])
    assert many.status_code == 200
    results = many.json()["results"]
    assert results[0]["outcome"] == "grouped" and results[0]["payload_type"] == "occurrence"
    assert results[1]["status"] == 422


def test_noise_threshold_keeps_occurrences_pending_then_opens_issue(admin: TestClient) -> None:
    # performance_n_plus_one_db_queries: ignore_limit 3 within 24 hours.
    t = datetime(2026, 11, 2, 10, tzinfo=UTC)
    first = post(admin, occurrence(type=1006, fingerprint=["n+1"], detection_time=t.isoformat()))
    assert first["outcome"] == "pending" and first["issue_id"] is None
    assert first["noise"] == {"count": 1, "threshold": 3, "window_ends_at": "2026-11-03T10:00:00Z"}
    pending = admin.get("/pending").json()["data"]
    assert pending[0]["count"] == 1 and pending[0]["fingerprint"] == "n+1"
    assert pending[0]["type"] == "performance_n_plus_one_db_queries"
    second = post(
        admin,
        occurrence(
            type=1006, fingerprint=["n+1"], detection_time=(t - timedelta(hours=2)).isoformat()
        ),
    )
    assert second["noise"]["count"] == 2
    third = post(
        admin,
        occurrence(
            type=1006, fingerprint=["n+1"], detection_time=(t + timedelta(hours=1)).isoformat()
        ),
    )
    assert third["outcome"] == "created"
    body = issue(admin, third["issue_id"])
    assert body["times_seen"] == 3
    assert body["first_seen"] == "2026-11-02T08:00:00Z"
    assert admin.get("/pending").json()["data"] == []
    occs = admin.get(f"/issues/{third['issue_id']}/occurrences").json()["data"]
    assert len(occs) == 3
    assert (
        post(admin, dict(occurrence(type=1006), id=first["occurrence_id"]))["outcome"]
        == "duplicate"
    )


def test_noise_window_restarts_after_expiry(admin: TestClient) -> None:
    t = datetime(2026, 11, 2, 10, tzinfo=UTC)
    post(admin, occurrence(type=1006, fingerprint=["w"], detection_time=t.isoformat()))
    post(
        admin,
        occurrence(
            type=1006, fingerprint=["w"], detection_time=(t + timedelta(hours=1)).isoformat()
        ),
    )
    late = post(
        admin,
        occurrence(
            type=1006, fingerprint=["w"], detection_time=(t + timedelta(hours=24)).isoformat()
        ),
    )
    assert late["outcome"] == "pending" and late["noise"]["count"] == 1
    post(
        admin,
        occurrence(
            type=1006, fingerprint=["w"], detection_time=(t + timedelta(hours=25)).isoformat()
        ),
    )
    created = post(
        admin,
        occurrence(
            type=1006, fingerprint=["w"], detection_time=(t + timedelta(hours=26)).isoformat()
        ),
    )
    assert created["outcome"] == "created"
    assert issue(admin, created["issue_id"])["times_seen"] == 3


def test_resolved_issue_regresses_on_new_occurrence(admin: TestClient) -> None:
    from app.models import Group

    first = post(admin, occurrence())
    with admin.app.state.ctx.db.write() as session:  # type: ignore[attr-defined]
        group = session.get(Group, first["issue_id"])
        group.status, group.substatus = 1, None
        session.commit()
    answer = post(admin, occurrence())
    assert answer["outcome"] == "regressed"
    body = issue(admin, first["issue_id"])
    assert body["status"] == "unresolved" and body["substatus"] == "regressed"
    assert post(admin, occurrence())["outcome"] == "grouped"


def test_creation_quota_rate_limits_new_issues(admin: TestClient) -> None:
    from app.models import IssueTypeRow

    with admin.app.state.ctx.db.write() as session:  # type: ignore[attr-defined]
        session.add(
            IssueTypeRow(
                type_id=9100,
                slug="quota_test",
                description="q",
                category_id=1,
                released=True,
                creation_quota_limit=2,
                creation_quota_window_seconds=3600,
            )
        )
        session.commit()
    outcomes = [
        post(admin, occurrence(type=9100, fingerprint=[f"q{i}"]))["outcome"] for i in range(3)
    ]
    assert outcomes == ["created", "created", "rate_limited"]
    limited = occurrence(type=9100, fingerprint=["q2"])
    assert post(admin, limited)["outcome"] == "rate_limited"
    assert post(admin, occurrence(type=9100, fingerprint=["q0"]))["outcome"] == "grouped"


def test_projects_short_ids_count_per_project(admin: TestClient) -> None:
    ids = [post(admin, occurrence(fingerprint=[f"s{i}"]))["issue_id"] for i in range(3)]
    assert [issue(admin, i)["short_id"] for i in ids] == ["DEFAULT-1", "DEFAULT-2", "DEFAULT-3"]
    with admin.app.state.ctx.db.read() as session:  # type: ignore[attr-defined]
        assert session.scalar(select(Project.next_short_id).where(Project.id == 1)) == 4


def test_etag_changes_when_an_occurrence_changes_the_issue(admin: TestClient) -> None:
    issue_id = post(admin, occurrence())["issue_id"]
    before = admin.get(f"/issues/{issue_id}").headers["etag"]
    post(admin, occurrence())
    assert admin.get(f"/issues/{issue_id}").headers["etag"] != before


def test_configured_limits_apply_over_http(settings: Any, clock: Any) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"max_fingerprint_elements": 2}), clock=clock)
    with TestClient(app) as c:
        c.headers["Authorization"] = "Bearer test-admin-token"
        error = assert_error(
            c.post("/occurrences", json=occurrence(fingerprint=["a", "b", "c"])),
            422,
            "invalid_payload",
        )
        assert error["details"]["field"] == "fingerprint"
