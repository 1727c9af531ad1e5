"""Runs the periodic jobs once (CLI) or in the background of ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.context import AppContext
from app.jobs.job import Job
from app.jobs.schedule import schedule

log = logging.getLogger(__name__)


def run_all_once(ctx: AppContext) -> dict[str, dict[str, Any]]:
    """Run every job once and return their summaries."""
    return {job.name: job.run(ctx) for job in schedule()}


async def start_background_jobs(ctx: AppContext) -> Callable[[], Awaitable[None]]:
    """Start one loop per job; returns a coroutine function that stops them."""
    stop = asyncio.Event()

    async def loop(job: Job) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(job.run, ctx)
            except Exception:
                log.exception("job %s failed", job.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=job.interval(ctx))

    tasks = [asyncio.create_task(loop(job), name=f"job:{job.name}") for job in schedule()]

    async def stopper() -> None:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    return stopper
