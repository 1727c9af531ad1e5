"""Periodic lifecycle jobs with the fake clock: auto-resolve, ongoing, forecast refresh."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import AppContext
from app.issues.write import lock_group
from app.jobs.runner import run_all_once
from app.jobs.schedule import job_named, schedule
from app.lifecycle.forecast import epoch_hour
from app.models import Activity
from tests.builders import ctx_of, group_row, make_group, make_project, set_hourly_counts
from tests.conftest import FakeClock


def run_job(ctx: AppContext, name: str) -> dict[str, object]:
    job = job_named(name)
    assert job.interval(ctx) == ctx.settings.jobs_interval_seconds
    return job.run(ctx)


def activity_types(ctx: AppContext, group_id: int) -> list[str]:
    with ctx.db.read() as session:
        stmt = select(Activity.type).where(Activity.group_id == group_id).order_by(Activity.id)
        return list(session.scalars(stmt))


def test_jobs_are_registered_under_their_names(app: FastAPI, admin: TestClient) -> None:
    summary = run_all_once(ctx_of(app))
    assert {"auto_resolve", "ongoing", "forecast_refresh"} <= set(summary)


def test_auto_resolve_after_the_projects_age(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    project = make_project(ctx, resolve_age_hours=24)
    stale = make_group(ctx, project_id=project.id, substatus=3)
    fresh = make_group(ctx, project_id=project.id, last_seen=clock.now + timedelta(hours=2))
    no_auto = make_group(ctx, project_id=project.id, type_id=6001)  # feedback: no auto-resolve
    elsewhere = make_group(ctx, project_id=1)  # project 1 has resolve_age_hours 0
    ignored = make_group(ctx, project_id=project.id, status=2, substatus=5)
    clock.advance(hours=24)
    assert run_job(ctx, "auto_resolve")["resolved"] == 0  # not older than the age yet
    clock.advance(minutes=1)
    assert run_job(ctx, "auto_resolve")["resolved"] == 1
    row = group_row(ctx, stale.id)
    assert (row.status, row.substatus, row.resolved_at) == (1, None, clock.now)
    assert (row.ignore_until, row.substatus_changed_at) == (None, clock.now)
    assert row.version == stale.version + 1
    assert activity_types(ctx, stale.id) == ["set_resolved_by_age"]
    for other in (fresh, no_auto, elsewhere, ignored):
        assert group_row(ctx, other.id).status == other.status
    assert run_job(ctx, "auto_resolve")["resolved"] == 0
    clock.advance(hours=2)
    assert run_job(ctx, "auto_resolve")["resolved"] == 1
    assert group_row(ctx, fresh.id).status == 1


def test_new_and_regressed_become_ongoing_after_seven_days(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    new = make_group(ctx, substatus=7)
    regressed = make_group(ctx, substatus=6, substatus_changed_at=clock.now + timedelta(days=1))
    old_regressed = make_group(
        ctx, substatus=6, first_seen=clock.now - timedelta(days=30), substatus_changed_at=clock.now
    )
    escalating = make_group(ctx, substatus=2, first_seen=clock.now - timedelta(days=30))
    clock.advance(days=7, seconds=1)
    assert run_job(ctx, "ongoing") == {"ongoing": 2}
    assert group_row(ctx, new.id).substatus == 3
    assert group_row(ctx, old_regressed.id).substatus == 3
    assert group_row(ctx, regressed.id).substatus == 6
    assert group_row(ctx, escalating.id).substatus == 2
    assert activity_types(ctx, new.id) == ["auto_set_ongoing"]
    clock.advance(days=1)
    assert run_job(ctx, "ongoing") == {"ongoing": 1}
    assert group_row(ctx, regressed.id).substatus == 3
    assert group_row(ctx, regressed.id).substatus_changed_at == clock.now


def test_forecast_is_recomputed_when_a_day_old(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, first_seen=clock.now - timedelta(days=30))
    admin.patch(f"/issues/{group.id}", json={"status": 2, "substatus": 1})
    assert admin.get(f"/issues/{group.id}/forecast").json()["ceilings"] == []
    now_hour = epoch_hour(clock.now)
    set_hourly_counts(ctx, group.id, {now_hour + 23 - i: 6 for i in range(168)})
    clock.advance(hours=23)
    assert run_job(ctx, "forecast_refresh") == {"refreshed": 0}
    clock.advance(hours=1)
    assert run_job(ctx, "forecast_refresh") == {"refreshed": 1}
    forecast = admin.get(f"/issues/{group.id}/forecast").json()
    assert forecast["start_date"] == "2026-11-03"
    assert forecast["ceilings"] == [36] * 14
    assert run_job(ctx, "forecast_refresh") == {"refreshed": 0}


def _fresh_occurrence(ctx: AppContext, group_id: int, barrier: threading.Barrier) -> None:
    """What ingest does to an issue: lock it, regress it if resolved, move last_seen."""
    from app.issues.activity import add_activity

    barrier.wait()
    with ctx.db.write() as session:
        group = lock_group(session, group_id)
        assert group is not None
        now = ctx.now()
        if group.status == 1:
            group.status, group.substatus, group.resolved_at = 0, 6, None
            add_activity(session, group, "set_regression", now=now)
        group.last_seen = now
        group.times_seen += 1
        session.commit()


def _auto_resolve(ctx: AppContext, barrier: threading.Barrier) -> None:
    barrier.wait()
    run_job(ctx, "auto_resolve")


@pytest.mark.parametrize("rounds", [6])
def test_auto_resolve_racing_a_fresh_occurrence_stays_consistent(
    admin: TestClient, app: FastAPI, clock: FakeClock, rounds: int
) -> None:
    ctx = ctx_of(app)
    project = make_project(ctx, resolve_age_hours=1)
    for _ in range(rounds):
        group = make_group(ctx, project_id=project.id, substatus=3)
        clock.advance(hours=2)
        barrier = threading.Barrier(3)
        threads = [
            threading.Thread(target=_fresh_occurrence, args=(ctx, group.id, barrier)),
            threading.Thread(target=_auto_resolve, args=(ctx, barrier)),
            threading.Thread(target=_auto_resolve, args=(ctx, barrier)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        row = group_row(ctx, group.id)
        kinds = activity_types(ctx, group.id)
        # Never lost: the occurrence is counted and the issue is not left resolved behind it.
        assert row.times_seen == group.times_seen + 1
        assert row.last_seen == clock.now
        assert row.status == 0
        # Never twice: at most one resolution, and a regression only after one.
        assert kinds in ([], ["set_resolved_by_age", "set_regression"])
        assert row.version == group.version + len(kinds)


def test_the_schedule_lists_every_job_once_in_a_fixed_order() -> None:
    names = [job.name for job in schedule()]
    assert names == ["auto_resolve", "ongoing", "forecast_refresh", "webhook_delivery", "retention"]
