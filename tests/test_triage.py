"""`PATCH /issues/{id}`, ETag / If-Match, activity paging and the forecast endpoint."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.lifecycle.forecast import epoch_hour
from tests.builders import (
    ctx_of,
    group_row,
    make_group,
    make_key,
    make_organization,
    make_project,
    set_hourly_counts,
)
from tests.conftest import FakeClock, assert_error, auth


def test_patch_changes_status_and_answers_with_etag(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app))
    response = admin.patch(f"/issues/{group.id}", json={"status": "resolved"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["substatus"]) == ("resolved", None)
    assert response.headers["ETag"] == f'"{group.id}-{group.version + 1}"'
    activity = admin.get(f"/issues/{group.id}/activity").json()["data"]
    assert [a["type"] for a in activity] == ["set_resolved"]
    assert activity[0]["actor"] == "admin"
    assert activity[0]["data"] == {"status": "resolved", "substatus": None}


def test_stale_if_match_is_precondition_failed(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app))
    first = admin.patch(f"/issues/{group.id}", json={"priority": "high"})
    tag = first.headers["ETag"]
    second = admin.patch(
        f"/issues/{group.id}", json={"status": "resolved"}, headers={"If-Match": tag}
    )
    assert second.status_code == 200
    assert second.headers["ETag"] != tag
    stale = admin.patch(
        f"/issues/{group.id}",
        json={"status": "unresolved", "substatus": "ongoing"},
        headers={"If-Match": tag},
    )
    error = assert_error(stale, 412, "precondition_failed")
    assert error["details"] == {"etag": second.headers["ETag"]}
    assert group_row(ctx_of(app), group.id).status == 1
    for header in ("*", f"W/{second.headers['ETag']}", f'"0-0", {second.headers["ETag"]}'):
        ok = admin.patch(f"/issues/{group.id}", json={}, headers={"If-Match": header})
        assert ok.status_code == 200
        assert ok.headers["ETag"] == second.headers["ETag"]


def test_an_unquoted_if_match_equal_to_the_etag_is_accepted(
    admin: TestClient, app: FastAPI
) -> None:
    group = make_group(ctx_of(app))
    tag = admin.get(f"/issues/{group.id}").headers["ETag"]
    bare = tag.strip('"')
    assert bare != tag  # the ETag is quoted; the header below is not
    ok = admin.patch(f"/issues/{group.id}", json={"priority": "high"}, headers={"If-Match": bare})
    assert ok.status_code == 200, ok.text
    again = ok.headers["ETag"]
    bare_again = again.strip('"')
    for header in (f"W/{bare_again}", f'"0-0", {bare_again}'):
        same = admin.patch(f"/issues/{group.id}", json={}, headers={"If-Match": header})
        assert same.status_code == 200, same.text
    # An unquoted old version is still stale.
    stale = admin.patch(f"/issues/{group.id}", json={"priority": "low"}, headers={"If-Match": bare})
    assert assert_error(stale, 412, "precondition_failed")["details"] == {"etag": again}
    assert group_row(ctx_of(app), group.id).priority == 75


def _stale_and_current(admin: TestClient, app: FastAPI) -> tuple[int, list[str], str]:
    """An issue changed twice: its two earlier ETags are stale."""
    group = make_group(ctx_of(app))
    tags = [admin.get(f"/issues/{group.id}").headers["ETag"]]
    for priority in ("high", "low"):
        r = admin.patch(f"/issues/{group.id}", json={"priority": priority})
        assert r.status_code == 200, r.text
        tags.append(r.headers["ETag"])
    assert len(set(tags)) == 3
    return group.id, tags[:2], tags[2]


@pytest.mark.parametrize(
    "shape",
    ["{0}, {1}", "{1},{0}", "W/{0}, W/{1}", "{0}, , {1}", '{0}, "0-0", {1}', "{0},{0}"],
)
def test_if_match_list_of_only_stale_tags_is_refused(
    admin: TestClient, app: FastAPI, shape: str
) -> None:
    issue_id, stale, current = _stale_and_current(admin, app)
    header = shape.format(*stale)
    r = admin.patch(
        f"/issues/{issue_id}", json={"status": "resolved"}, headers={"If-Match": header}
    )
    error = assert_error(r, 412, "precondition_failed")
    assert error["details"] == {"etag": current}
    after = admin.get(f"/issues/{issue_id}")
    assert after.json()["status"] == "unresolved" and after.headers["ETag"] == current


@pytest.mark.parametrize(
    "shape", ["{0}, {1}, {c}", "{c}, {0}", "{0}, W/{c}, {1}", '"0-0",{c}', "{0} ,  {c} "]
)
def test_if_match_list_with_the_current_tag_is_accepted(
    admin: TestClient, app: FastAPI, shape: str
) -> None:
    issue_id, stale, current = _stale_and_current(admin, app)
    header = shape.format(*stale, c=current)
    r = admin.patch(
        f"/issues/{issue_id}", json={"status": "resolved"}, headers={"If-Match": header}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved" and r.headers["ETag"] != current


def test_priority_by_hand_locks_it(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app), priority=25, initial_priority=25)
    body = admin.patch(f"/issues/{group.id}", json={"priority": 75}).json()
    assert (body["priority"], body["priority_locked"]) == ("high", True)
    again = admin.patch(f"/issues/{group.id}", json={"priority": "high"})
    assert again.headers["ETag"] == f'"{group.id}-{group.version + 1}"'
    activity = admin.get(f"/issues/{group.id}/activity").json()["data"]
    assert [(a["type"], a["data"]) for a in activity] == [("set_priority", {"priority": "high"})]
    admin.patch(f"/issues/{group.id}", json={"status": "ignored", "substatus": "archived_forever"})
    escalated = admin.patch(
        f"/issues/{group.id}", json={"status": "unresolved", "substatus": "escalating"}
    ).json()
    assert escalated["priority"] == "high"


@pytest.mark.parametrize(
    ("body", "http", "code"),
    [
        ({"status": "unresolved"}, 422, "missing_substatus"),
        ({"status": "resolved", "substatus": "ongoing"}, 422, "unexpected_substatus"),
        ({"status": "unresolved", "substatus": "new"}, 422, "invalid_substatus"),
        ({"status": "snoozed"}, 422, "unsupported_status"),
        ({"status": "unresolved", "substatus": "escalating"}, 409, "invalid_transition"),
        ({"substatus": "ongoing"}, 422, "invalid_payload"),
        ({"priority": "urgent"}, 422, "invalid_payload"),
        ({"priority": 30}, 422, "invalid_payload"),
        ({"assignee": "bob"}, 422, "invalid_payload"),
        ({"assignee": "user:"}, 422, "invalid_payload"),
        ({"ignore_until": {"count": 5}}, 422, "invalid_payload"),
        ({"ignore_until": {}}, 422, "invalid_payload"),
        (
            {"ignore_until": {"count": 5, "window_seconds": 60, "until": "2027-01-01"}},
            422,
            "invalid_payload",
        ),
        (
            {"status": "resolved", "ignore_until": {"until": "2027-01-01T00:00:00Z"}},
            422,
            "invalid_payload",
        ),
    ],
)
def test_patch_rule_violations(
    admin: TestClient, app: FastAPI, body: dict[str, Any], http: int, code: str
) -> None:
    group = make_group(ctx_of(app), substatus=3)
    assert_error(admin.patch(f"/issues/{group.id}", json=body), http, code)
    assert group_row(ctx_of(app), group.id).version == group.version


def test_same_status_by_hand_changes_nothing(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app), substatus=3)
    response = admin.patch(f"/issues/{group.id}", json={"status": 0, "substatus": 3})
    assert response.status_code == 200
    assert response.headers["ETag"] == f'"{group.id}-{group.version}"'
    assert admin.get(f"/issues/{group.id}/activity").json()["data"] == []


def test_ignore_until_count_is_stored_with_its_start(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app))
    body = admin.patch(
        f"/issues/{group.id}", json={"ignore_until": {"count": 3, "window_seconds": 3600}}
    ).json()
    assert (body["status"], body["substatus"]) == ("ignored", "archived_until_condition_met")
    assert body["ignore_until"] == {
        "count": 3,
        "window_seconds": 3600,
        "since": "2026-11-02T12:00:00+00:00",
    }
    newer = admin.patch(
        f"/issues/{group.id}",
        json={"status": "ignored", "ignore_until": {"until": "2026-11-03T00:00:00"}},
    ).json()
    assert newer["ignore_until"] == {"until": "2026-11-03T00:00:00+00:00"}
    types = [a["type"] for a in admin.get(f"/issues/{group.id}/activity").json()["data"]]
    assert types == ["set_ignored", "set_ignored"]
    unresolved = admin.patch(
        f"/issues/{group.id}", json={"status": "unresolved", "substatus": "ongoing"}
    ).json()
    assert unresolved["ignore_until"] is None


def test_other_organizations_issues_are_not_found(client: TestClient, app: FastAPI) -> None:
    ctx = ctx_of(app)
    org = make_organization(ctx)
    project = make_project(ctx, organization_id=org.id)
    group = make_group(ctx, project_id=project.id)
    mine = make_key(ctx)
    for response in (
        client.patch(f"/issues/{group.id}", json={"status": "resolved"}, headers=auth(mine)),
        client.get(f"/issues/{group.id}/activity", headers=auth(mine)),
        client.get(f"/issues/{group.id}/forecast", headers=auth(mine)),
        client.patch("/issues/999999", json={"status": "resolved"}, headers=auth(mine)),
    ):
        assert_error(response, 404, "issue_not_found")
    theirs = make_key(ctx, organization_id=org.id, scopes=("read",))
    assert client.get(f"/issues/{group.id}/activity", headers=auth(theirs)).status_code == 200
    assert_error(
        client.patch(f"/issues/{group.id}", json={"status": "resolved"}, headers=auth(theirs)),
        403,
        "forbidden",
    )
    other_project = make_key(ctx, organization_id=org.id, project_ids=[1])
    assert_error(
        client.get(f"/issues/{group.id}/forecast", headers=auth(other_project)),
        404,
        "issue_not_found",
    )


def test_hidden_types_are_not_found_for_keys(client: TestClient, app: FastAPI) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, type_id=2001)  # profile_file_io_main_thread: not released
    key = make_key(ctx)
    assert_error(
        client.get(f"/issues/{group.id}/activity", headers=auth(key)), 404, "issue_not_found"
    )


def test_activity_pages_newest_first(admin: TestClient, app: FastAPI, clock: FakeClock) -> None:
    group = make_group(ctx_of(app))
    for priority in ("low", "medium", "high", "low", "medium"):
        clock.advance(minutes=1)
        admin.patch(f"/issues/{group.id}", json={"priority": priority})
    first = admin.get(f"/issues/{group.id}/activity", params={"limit": 2})
    page = first.json()
    assert [a["data"]["priority"] for a in page["data"]] == ["medium", "low"]
    assert page["next_cursor"]
    assert 'rel="next"' in first.headers["Link"]
    seen = [a["id"] for a in page["data"]]
    cursor = page["next_cursor"]
    while cursor:
        page = admin.get(
            f"/issues/{group.id}/activity", params={"limit": 2, "cursor": cursor}
        ).json()
        seen += [a["id"] for a in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == 5
    assert seen == sorted(seen, reverse=True)
    assert_error(
        admin.get(f"/issues/{group.id}/activity", params={"cursor": "x"}), 422, "invalid_payload"
    )
    assert_error(
        admin.get(f"/issues/{group.id}/activity", params={"limit": 0}), 422, "invalid_payload"
    )


def test_forecast_of_flat_week_is_36(admin: TestClient, app: FastAPI, clock: FakeClock) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, first_seen=clock.now - timedelta(days=20))
    now_hour = epoch_hour(clock.now)
    set_hourly_counts(ctx, group.id, {now_hour - i: 6 for i in range(1, 169)})
    assert admin.get(f"/issues/{group.id}/forecast").json()["ceilings"] == []
    admin.patch(
        f"/issues/{group.id}", json={"status": "ignored", "substatus": "archived_until_escalating"}
    )
    forecast = admin.get(f"/issues/{group.id}/forecast").json()
    assert forecast == {
        "issue_id": group.id,
        "computed_at": "2026-11-02T12:00:00Z",
        "start_date": "2026-11-02",
        "ceilings": [36] * 14,
    }


def test_forecast_of_young_issue_is_ten_times_peak(admin: TestClient, app: FastAPI) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx)
    now_hour = epoch_hour(ctx.now())
    set_hourly_counts(ctx, group.id, {now_hour: 4})  # the current hour does not count yet
    admin.patch(f"/issues/{group.id}", json={"status": 2, "substatus": 1})
    assert admin.get(f"/issues/{group.id}/forecast").json()["ceilings"] == []
    group2 = make_group(ctx, first_seen=ctx.now() - timedelta(hours=5))
    set_hourly_counts(ctx, group2.id, {now_hour - 2: 4, now_hour - 4: 1})
    admin.patch(f"/issues/{group2.id}", json={"status": 2, "substatus": 1})
    assert admin.get(f"/issues/{group2.id}/forecast").json()["ceilings"] == [40] * 14


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("PATCH", f"/issues/{2**70}", None),
        ("GET", f"/issues/{2**70}/activity", None),
        ("GET", "/issues/0/forecast", None),
        ("GET", "/issues/abc/forecast", None),
        ("GET", "/issues/1/activity", {"cursor": "9" * 25}),
        ("GET", "/issues/1/activity", {"cursor": "9" * 19}),
        ("GET", "/issues/1/activity", {"limit": 101}),
    ],
)
def test_out_of_range_ids_are_invalid_payload(
    admin: TestClient, app: FastAPI, method: str, path: str, params: dict[str, Any] | None
) -> None:
    make_group(ctx_of(app))
    response = admin.request(method, path, params=params, json={"status": "resolved"})
    assert_error(response, 422, "invalid_payload")


def test_huge_ignore_count_is_invalid_payload(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app))
    body = {"ignore_until": {"count": 10**13, "window_seconds": 60}}
    assert_error(admin.patch(f"/issues/{group.id}", json=body), 422, "invalid_payload")


def test_assignee_is_set_recorded_and_cleared(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app), substatus=3)
    answer = admin.patch(f"/issues/{group.id}", json={"assignee": "user:alice"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["assignee"] == "user:alice"
    assert answer.headers["ETag"] == f'"{group.id}-{group.version + 1}"'
    # The same assignee again records nothing; another one, then null, do.
    admin.patch(f"/issues/{group.id}", json={"assignee": "user:alice"})
    admin.patch(f"/issues/{group.id}", json={"assignee": "team:web"})
    cleared = admin.patch(f"/issues/{group.id}", json={"assignee": None}).json()
    assert cleared["assignee"] is None
    activity = admin.get(f"/issues/{group.id}/activity").json()["data"]
    assert [(a["type"], a["data"]["assignee"], a["actor"]) for a in activity] == [
        ("set_assignee", None, "admin"),
        ("set_assignee", "team:web", "admin"),
        ("set_assignee", "user:alice", "admin"),
    ]
    assert activity[0]["data"]["previous"] == "team:web"


def test_omitting_the_assignee_leaves_it(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app), substatus=3, assignee="team:ops")
    answer = admin.patch(f"/issues/{group.id}", json={"priority": "high"}).json()
    assert answer["assignee"] == "team:ops"


def test_assigning_needs_the_triage_scope(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app), substatus=3)
    reader = make_key(ctx_of(app), scopes=("read",))
    answer = admin.patch(f"/issues/{group.id}", json={"assignee": "user:bob"}, headers=auth(reader))
    assert_error(answer, 403, "forbidden")
    assert group_row(ctx_of(app), group.id).assignee is None
