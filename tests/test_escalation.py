"""Ignored issues that receive occurrences: forecast escalation and ignore_until conditions."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.lifecycle.forecast import epoch_hour
from tests.builders import ctx_of, group_row, make_group, receive, set_hourly_counts
from tests.conftest import FakeClock


def types(admin: TestClient, issue_id: int) -> list[str]:
    return [a["type"] for a in admin.get(f"/issues/{issue_id}/activity").json()["data"]]


def archive_until_escalating(admin: TestClient, issue_id: int) -> None:
    response = admin.patch(
        f"/issues/{issue_id}", json={"status": "ignored", "substatus": "archived_until_escalating"}
    )
    assert response.status_code == 200, response.text


def test_without_forecast_the_eleventh_occurrence_in_an_hour_escalates(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, priority=25, initial_priority=25)
    archive_until_escalating(admin, group.id)
    clock.advance(minutes=5)
    receive(ctx, group.id, [clock.now] * 10)
    assert group_row(ctx, group.id).status == 2  # 10 is not above the ceiling of 10
    receive(ctx, group.id, [clock.now])
    row = group_row(ctx, group.id)
    assert (row.status, row.substatus, row.priority) == (0, 2, 50)
    activity = admin.get(f"/issues/{group.id}/activity").json()["data"][0]
    assert activity["type"] == "set_escalating"
    assert activity["data"]["count"] == 11
    assert activity["data"]["ceiling"] == 10
    assert activity["actor"] is None


def test_forecast_ceiling_decides(admin: TestClient, app: FastAPI, clock: FakeClock) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, first_seen=clock.now - timedelta(days=30))
    now_hour = epoch_hour(clock.now)
    set_hourly_counts(ctx, group.id, {now_hour - i: 6 for i in range(1, 169)})
    archive_until_escalating(admin, group.id)
    clock.advance(days=3)
    receive(ctx, group.id, [clock.now] * 36)
    assert group_row(ctx, group.id).status == 2
    receive(ctx, group.id, [clock.now])
    assert group_row(ctx, group.id).substatus == 2
    assert types(admin, group.id) == ["set_escalating", "set_ignored"]


def test_after_fourteen_days_the_last_ceiling_applies(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, first_seen=clock.now - timedelta(days=30))
    now_hour = epoch_hour(clock.now)
    set_hourly_counts(ctx, group.id, {now_hour - i: 6 for i in range(1, 169)})
    archive_until_escalating(admin, group.id)
    clock.advance(days=20)
    receive(ctx, group.id, [clock.now] * 30)
    assert group_row(ctx, group.id).status == 2


def test_types_without_escalation_detection_never_escalate(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, type_id=1018)  # performance_p95_endpoint_regression
    archive_until_escalating(admin, group.id)
    receive(ctx, group.id, [clock.now] * 50)
    assert group_row(ctx, group.id).status == 2


def test_archived_forever_stays_ignored(admin: TestClient, app: FastAPI, clock: FakeClock) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx)
    admin.patch(f"/issues/{group.id}", json={"status": "ignored", "substatus": "archived_forever"})
    receive(ctx, group.id, [clock.now] * 50)
    assert group_row(ctx, group.id).status == 2


def test_more_than_count_within_window_escalates(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx)
    before = clock.now - timedelta(minutes=1)
    admin.patch(f"/issues/{group.id}", json={"ignore_until": {"count": 3, "window_seconds": 600}})
    receive(ctx, group.id, [before, before])  # detected before the ignore: not counted
    clock.advance(minutes=1)
    receive(ctx, group.id, [clock.now, clock.now])
    clock.advance(minutes=11)
    receive(ctx, group.id, [clock.now])  # the first two fell out of the window
    clock.advance(minutes=1)
    receive(ctx, group.id, [clock.now, clock.now])
    assert group_row(ctx, group.id).status == 2  # 3 in the window: not more than 3
    receive(ctx, group.id, [clock.now])
    row = group_row(ctx, group.id)
    assert (row.status, row.substatus, row.ignore_until) == (0, 2, None)
    activity = admin.get(f"/issues/{group.id}/activity").json()["data"][0]
    assert activity["type"] == "set_escalating"
    assert activity["data"] == {"reason": "ignore_count", "count": 4, "window_seconds": 600}


def test_after_until_the_next_occurrence_makes_it_ongoing(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx)
    admin.patch(f"/issues/{group.id}", json={"ignore_until": {"until": "2026-11-03T12:00:00Z"}})
    clock.advance(hours=23)
    receive(ctx, group.id, [clock.now] * 100)
    assert group_row(ctx, group.id).status == 2
    clock.advance(hours=2)
    receive(ctx, group.id, [clock.now])
    row = group_row(ctx, group.id)
    assert (row.status, row.substatus) == (0, 3)
    assert types(admin, group.id) == ["set_unresolved", "set_ignored"]
