"""Runs the periodic jobs once (CLI) or in the background of ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.context import AppContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A periodic job: ``run(ctx)`` returns a small summary; ``interval`` in seconds or None."""

    name: str
    run: Callable[[AppContext], dict[str, Any]]
    interval: Callable[[AppContext], float]


JOBS: list[Job] = []


def register_job(job: Job) -> None:
    """Add a job to the list that ``serve`` and ``issue-platform jobs`` run."""
    if all(j.name != job.name for j in JOBS):
        JOBS.append(job)


def _load_jobs() -> None:
    # Importing the modules registers their jobs.
    from app import job_modules  # noqa: F401


def run_all_once(ctx: AppContext) -> dict[str, dict[str, Any]]:
    """Run every job once and return their summaries."""
    _load_jobs()
    return {job.name: job.run(ctx) for job in JOBS}


async def start_background_jobs(ctx: AppContext) -> Callable[[], Awaitable[None]]:
    """Start one loop per job; returns a coroutine function that stops them."""
    _load_jobs()
    stop = asyncio.Event()

    async def loop(job: Job) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(job.run, ctx)
            except Exception:
                log.exception("job %s failed", job.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=job.interval(ctx))

    tasks = [asyncio.create_task(loop(job), name=f"job:{job.name}") for job in JOBS]

    async def stopper() -> None:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    return stopper
