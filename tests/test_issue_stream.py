"""GET /issues: filters, sorts, keyset cursors, default search, tenancy and visibility."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.builders import make_key, make_org_with_project, occurrence, set_flag
from tests.conftest import assert_error, auth

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def post(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/occurrences", json=occurrence(**overrides))
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["data"]]


def test_type_filter_finds_exactly_that_types_issues(admin: TestClient) -> None:
    err = post(admin, fingerprint=["e"])["issue_id"]
    cron = post(admin, fingerprint=["c"], type=4001)["issue_id"]
    assert ids(admin.get("/issues", params={"type": "monitor_check_in_failure"})) == [cron]
    both = admin.get("/issues", params=[("type", "error"), ("type", "monitor_check_in_failure")])
    assert sorted(ids(both)) == sorted([err, cron])
    assert_error(admin.get("/issues", params={"type": "nope"}), 422, "unknown_issue_type")


def test_category_accepts_id_or_slug(admin: TestClient) -> None:
    post(admin, fingerprint=["e"])
    cron = post(admin, fingerprint=["c"], type=4001)["issue_id"]
    assert ids(admin.get("/issues", params={"category": "cron"})) == [cron]
    assert ids(admin.get("/issues", params={"category": "4"})) == [cron]
    assert_error(admin.get("/issues", params={"category": "nope"}), 422, "unknown_category")


def test_types_outside_default_search_need_to_be_asked_for(admin: TestClient) -> None:
    err = post(admin, fingerprint=["e"])["issue_id"]
    feedback = post(admin, fingerprint=["f"], type=6001)["issue_id"]
    assert ids(admin.get("/issues")) == [err]
    assert ids(admin.get("/issues", params={"type": "feedback"})) == [feedback]
    assert ids(admin.get("/issues", params={"category": "feedback"})) == [feedback]


def test_sorts_put_newest_or_largest_first(admin: TestClient) -> None:
    a = post(admin, fingerprint=["a"], detection_time=T0.isoformat(), priority="high")["issue_id"]
    b = post(
        admin,
        fingerprint=["b"],
        detection_time=(T0 + timedelta(hours=2)).isoformat(),
        priority="low",
    )["issue_id"]
    for _ in range(2):
        post(admin, fingerprint=["a"], detection_time=T0.isoformat(), priority="high")
    assert ids(admin.get("/issues")) == [b, a]
    assert ids(admin.get("/issues", params={"sort": "times_seen"})) == [a, b]
    assert ids(admin.get("/issues", params={"sort": "priority"})) == [a, b]
    assert ids(admin.get("/issues", params={"sort": "first_seen"})) == [b, a]
    assert_error(admin.get("/issues", params={"sort": "random"}), 422, "invalid_payload")


def test_filters_by_status_priority_level_text_and_time(admin: TestClient) -> None:
    a = post(
        admin,
        fingerprint=["a"],
        issue_title="Database timeout",
        level="error",
        priority="high",
        detection_time=T0.isoformat(),
    )["issue_id"]
    b = post(
        admin,
        fingerprint=["b"],
        issue_title="Slow render",
        level="info",
        priority="low",
        detection_time=(T0 + timedelta(days=2)).isoformat(),
    )["issue_id"]
    assert ids(admin.get("/issues", params={"level": "error"})) == [a]
    assert ids(admin.get("/issues", params={"priority": "low"})) == [b]
    assert ids(admin.get("/issues", params={"priority": "75"})) == [a]
    assert ids(admin.get("/issues", params={"query": "timeout"})) == [a]
    assert ids(admin.get("/issues", params={"query": "TIMEOUT"})) == [a]
    assert ids(admin.get("/issues", params={"query": "100%"})) == []
    assert ids(admin.get("/issues", params={"status": "unresolved", "substatus": "new"})) == [b, a]
    assert ids(admin.get("/issues", params={"status": "resolved"})) == []
    after = (T0 + timedelta(days=1)).isoformat()
    assert ids(admin.get("/issues", params={"last_seen_after": after})) == [b]
    assert ids(admin.get("/issues", params={"first_seen_before": after})) == [a]
    assert_error(admin.get("/issues", params={"status": "sleepy"}), 422, "invalid_payload")
    assert_error(admin.get("/issues", params={"limit": 0}), 422, "invalid_payload")
    assert_error(admin.get("/issues", params={"limit": 101}), 422, "invalid_payload")


def test_cursor_walk_never_repeats_or_skips_unchanged_issues(admin: TestClient) -> None:
    created = []
    for i in range(23):
        created.append(
            post(
                admin,
                fingerprint=[f"walk{i}"],
                detection_time=(T0 + timedelta(minutes=i)).isoformat(),
            )["issue_id"]
        )
    seen: list[int] = []
    changed: set[int] = set()
    cursor = None
    page_no = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        response = admin.get("/issues", params=params)
        page = response.json()
        seen.extend(i["id"] for i in page["data"])
        cursor = page["next_cursor"]
        if cursor:
            assert 'rel="next"' in response.headers["link"]
        else:
            assert "link" not in response.headers
            break
        # Between pages, issues get new occurrences (their sort key changes) and new issues appear.
        touched = created[page_no]
        post(
            admin,
            fingerprint=[f"walk{created.index(touched)}"],
            detection_time=(T0 + timedelta(hours=5, minutes=page_no)).isoformat(),
        )
        changed.add(touched)
        post(
            admin,
            fingerprint=[f"new{page_no}"],
            detection_time=(T0 + timedelta(hours=6)).isoformat(),
        )
        page_no += 1
    unchanged = [i for i in created if i not in changed]
    for issue_id in unchanged:
        assert seen.count(issue_id) == 1, issue_id
    assert len(seen) == len(set(seen))


def test_bad_cursor_is_422(admin: TestClient) -> None:
    assert_error(admin.get("/issues", params={"cursor": "garbage!"}), 422, "invalid_payload")


def test_key_sees_only_its_organization(admin: TestClient) -> None:
    ctx = admin.app.state.ctx  # type: ignore[attr-defined]
    make_org_with_project(ctx, 2, 20)
    mine = post(admin, fingerprint=["mine"])["issue_id"]
    theirs = post(admin, fingerprint=["theirs"], project_id=20)["issue_id"]
    key = auth(make_key(ctx, organization_id=2, scopes=("read",)))
    assert ids(admin.get("/issues", headers=key)) == [theirs]
    assert_error(admin.get("/issues", params={"project": 1}, headers=key), 403, "forbidden")
    assert_error(admin.get(f"/issues/{mine}", headers=key), 404, "issue_not_found")
    assert admin.get(f"/issues/{theirs}", headers=key).status_code == 200
    limited = auth(make_key(ctx, organization_id=1, scopes=("read",), project_ids=[1]))
    assert ids(admin.get("/issues", headers=limited)) == [mine]


def test_key_needs_read_scope_and_token(admin: TestClient) -> None:
    ctx = admin.app.state.ctx  # type: ignore[attr-defined]
    ingest_only = auth(make_key(ctx, scopes=("ingest",)))
    assert_error(admin.get("/issues", headers=ingest_only), 403, "forbidden")
    assert_error(
        admin.get("/issues", headers={"Authorization": "Bearer nope"}), 401, "unauthenticated"
    )
    assert_error(admin.get("/issues", headers={"Authorization": ""}), 401, "unauthenticated")
    read_only = auth(make_key(ctx, scopes=("read",)))
    assert_error(admin.post("/occurrences", json=occurrence(), headers=read_only), 403, "forbidden")


def test_key_cannot_ingest_into_another_organization(admin: TestClient) -> None:
    ctx = admin.app.state.ctx  # type: ignore[attr-defined]
    make_org_with_project(ctx, 2, 20)
    key = auth(make_key(ctx, organization_id=2, scopes=("ingest",)))
    assert_error(
        admin.post("/occurrences", json=occurrence(project_id=1), headers=key), 403, "forbidden"
    )
    assert (
        admin.post("/occurrences", json=occurrence(project_id=20), headers=key).status_code == 202
    )


def test_unreleased_type_follows_its_ingest_and_visible_flags(admin: TestClient) -> None:
    ctx = admin.app.state.ctx  # type: ignore[attr-defined]
    key = auth(make_key(ctx, scopes=("ingest", "read")))
    dropped = admin.post(
        "/occurrences", json=occurrence(type=2001, fingerprint=["io"]), headers=key
    ).json()
    assert (dropped["outcome"], dropped["reason"]) == ("dropped", "ingest_disabled")
    assert (
        admin.get(f"/occurrences/{dropped['occurrence_id']}", params={"project_id": 1}).status_code
        == 404
    )
    set_flag(ctx, 2001, "ingest", "la", [1])
    created = admin.post(
        "/occurrences", json=occurrence(type=2001, fingerprint=["io"]), headers=key
    ).json()
    assert created["outcome"] == "created"
    assert ids(admin.get("/issues", headers=key)) == []
    assert (
        ids(admin.get("/issues", params={"type": "profile_file_io_main_thread"}, headers=key)) == []
    )
    assert_error(admin.get(f"/issues/{created['issue_id']}", headers=key), 404, "issue_not_found")
    assert ids(admin.get("/issues")) == []
    assert ids(admin.get("/issues", params={"include_hidden": "true"})) == [created["issue_id"]]
    # A search for a released and a hidden type: the condition still applies to the hidden one.
    released = post(admin, fingerprint=["released"])["issue_id"]
    both = {"type": ["error", "profile_file_io_main_thread"]}
    assert ids(admin.get("/issues", params=both, headers=key)) == [released]
    assert ids(admin.get("/issues", params={"type": "error"}, headers=key)) == [released]
    set_flag(ctx, 2001, "visible", "ea", [])
    assert ids(admin.get("/issues", headers=key)) == [released]
    set_flag(ctx, 2001, "visible", "ga", [])
    everything = {released, created["issue_id"]}
    assert set(ids(admin.get("/issues", params=both, headers=key))) == everything
    assert set(ids(admin.get("/issues", headers=key))) == everything
    assert set(ids(admin.get("/issues"))) == everything


def test_issue_occurrences_are_paged_newest_first(admin: TestClient) -> None:
    issue_id = post(admin, fingerprint=["o"], detection_time=T0.isoformat())["issue_id"]
    for i in range(1, 5):
        post(admin, fingerprint=["o"], detection_time=(T0 + timedelta(minutes=i)).isoformat())
    first = admin.get(f"/issues/{issue_id}/occurrences", params={"limit": 3}).json()
    times = [o["detection_time"] for o in first["data"]]
    assert times == sorted(times, reverse=True) and len(times) == 3
    rest = admin.get(
        f"/issues/{issue_id}/occurrences", params={"limit": 3, "cursor": first["next_cursor"]}
    ).json()
    assert len(rest["data"]) == 2 and rest["next_cursor"] is None
    assert rest["data"][-1]["detection_time"] == "2026-11-01T00:00:00Z"


def test_issue_answer_carries_etag(admin: TestClient) -> None:
    issue_id = post(admin)["issue_id"]
    response = admin.get(f"/issues/{issue_id}")
    assert response.headers["etag"]
    assert_error(admin.get("/issues/999999"), 404, "issue_not_found")


def test_query_finds_an_issue_by_its_short_id(admin: TestClient) -> None:
    admin.post(
        "/admin/projects", json={"id": 5, "organization_id": 1, "slug": "web-app", "name": "W"}
    )
    first = admin.post("/occurrences", json=occurrence(project_id=5, fingerprint=["s1"])).json()
    admin.post("/occurrences", json=occurrence(project_id=5, fingerprint=["s2"]))
    admin.post("/occurrences", json=occurrence(project_id=1, fingerprint=["s3"]))
    short_id = admin.get(f"/issues/{first['issue_id']}").json()["short_id"]
    assert short_id == "WEB-APP-1"
    for query in ("WEB-APP-1", "web-app-1", " web-app-1 "):
        found = admin.get("/issues", params={"query": query}).json()["data"]
        assert [i["id"] for i in found] == [first["issue_id"]], query
    assert admin.get("/issues", params={"query": "WEB-APP-99"}).json()["data"] == []
    assert admin.get("/issues", params={"query": "NOPE-1"}).json()["data"] == []


def test_a_short_id_of_another_organization_finds_nothing(admin: TestClient) -> None:
    make_org_with_project(admin.app.state.ctx, 20, 20)  # type: ignore[attr-defined]
    theirs = admin.post("/occurrences", json=occurrence(project_id=20)).json()
    short_id = admin.get(f"/issues/{theirs['issue_id']}").json()["short_id"]
    key = make_key(admin.app.state.ctx, scopes=("read",))  # type: ignore[attr-defined]
    found = admin.get("/issues", params={"query": short_id}, headers=auth(key)).json()["data"]
    assert found == []
