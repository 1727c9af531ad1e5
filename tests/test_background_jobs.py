"""The periodic jobs inside ``serve``: started with the application unless turned off."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.context import AppContext
from app.jobs import runner
from app.main import create_app


@pytest.mark.parametrize(("run_jobs", "started"), [(True, 1), (False, 0)])
def test_serve_runs_the_periodic_jobs_unless_run_jobs_is_off(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, run_jobs: bool, started: int
) -> None:
    calls: list[AppContext] = []

    async def fake_start(ctx: AppContext) -> Callable[[], Awaitable[None]]:
        calls.append(ctx)

        async def stop() -> None:
            return None

        return stop

    monkeypatch.setattr(runner, "start_background_jobs", fake_start)
    app = create_app(settings.model_copy(update={"run_jobs": run_jobs}), start_workers=True)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    assert len(calls) == started


def test_serve_collects_cycles_rarely_once_started(settings: Settings) -> None:
    # The default thresholds cost several microseconds of every ingested occurrence and
    # paused requests for full collections; serve raises them after its start-up freeze.
    import gc

    from app.main import GC_THRESHOLDS

    before = gc.get_threshold()
    try:
        app = create_app(settings.model_copy(update={"run_jobs": False}), start_workers=True)
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
