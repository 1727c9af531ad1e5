"""The periodic job loop of ``serve`` (``start_background_jobs``), run for real.

Every registered job runs on its own loop against the test database, with a short interval. The
auto-resolve job shows the loop's behaviour from the outside: issues that become stale while the
loop runs get resolved (so the job runs again and again); a real database error (a trigger that
refuses every update of ``groups``) makes the job fail, which is logged, and the loop carries on
and resolves the issue once the trigger is gone; stopping ends every loop at once, even one
waiting out an hour-long interval. Waits are bounded polls of a condition, never bare sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.context import AppContext
from app.jobs.runner import start_background_jobs
from app.jobs.schedule import schedule
from tests.builders import ctx_of, group_row, make_group, make_project
from tests.conftest import FakeClock

RESOLVED = 1
DEADLINE_SECONDS = 20


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Lifecycle jobs every 20 ms; the webhook job waits an hour between its runs."""
    return settings.model_copy(
        update={"jobs_interval_seconds": 0.02, "webhook_poll_seconds": 3600.0}
    )


@contextmanager
def groups_refuse_updates(ctx: AppContext) -> Iterator[None]:
    """A trigger that fails every UPDATE of ``groups`` (dropped afterwards: PostgreSQL keeps it)."""
    with ctx.db.engine.begin() as conn:
        if ctx.db.sqlite:
            conn.exec_driver_sql(
                "CREATE TRIGGER groups_frozen BEFORE UPDATE ON groups "
                "BEGIN SELECT RAISE(ABORT, 'groups are frozen'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION groups_frozen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'groups are frozen'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER groups_frozen BEFORE UPDATE ON groups "
                "FOR EACH ROW EXECUTE FUNCTION groups_frozen()"
            )
    try:
        yield
    finally:
        with ctx.db.engine.begin() as conn:
            if ctx.db.sqlite:
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS groups_frozen")
            else:
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS groups_frozen ON groups")
                conn.exec_driver_sql("DROP FUNCTION IF EXISTS groups_frozen()")


async def until(predicate: Callable[[], Any], what: str) -> None:
    """Wait (without blocking the loop) until the predicate holds; fail after the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage() == "job auto_resolve failed" for r in caplog.records)


def test_job_loops_run_repeatedly_survive_a_failing_job_and_stop_promptly(
    admin: TestClient, app: FastAPI, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="app.jobs.runner")
    ctx = ctx_of(app)
    project = make_project(ctx, resolve_age_hours=1)

    def stale_issue() -> int:
        return make_group(ctx, project_id=project.id, last_seen=clock.now - timedelta(hours=2)).id

    def resolved(group_id: int) -> Callable[[], bool]:
        return lambda: group_row(ctx, group_id).status == RESOLVED

    async def scenario() -> None:
        stop = await start_background_jobs(ctx)
        try:
            first = stale_issue()
            await until(resolved(first), "the first stale issue to be resolved")
            # Only a later run of the job can resolve an issue that went stale after that.
            second = stale_issue()
            await until(resolved(second), "a later run to resolve the second issue")

            with groups_refuse_updates(ctx):
                third = stale_issue()
                await until(lambda: failures(caplog) >= 2, "the job to fail twice")
                assert group_row(ctx, third).status != RESOLVED
            # The loop outlived the failures: once the database accepts updates again, it
            # resolves the issue.
            await until(resolved(third), "the loop to resolve the issue after the failures")
        finally:
            # The webhook loop waits an hour between runs: stopping must not wait for that.
            await asyncio.wait_for(stop(), timeout=DEADLINE_SECONDS)
        running = [t for t in asyncio.all_tasks() if t.get_name().startswith("job:")]
        assert running == []

    asyncio.run(scenario())
    record = next(r for r in caplog.records if r.getMessage() == "job auto_resolve failed")
    assert record.exc_info is not None
    assert "groups are frozen" in str(record.exc_info[1])
    assert {job.name for job in schedule()} >= {"auto_resolve", "webhook_delivery"}
