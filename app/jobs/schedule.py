"""The periodic jobs, listed explicitly in the order they run.

``serve`` (one loop per job), ``issue-platform jobs`` (each once) and the tests read this one
list; a domain package adds a job by exporting its function and being named here, not by a side
effect of being imported.
"""

from __future__ import annotations

from app.context import AppContext
from app.jobs.job import Job
from app.lifecycle.jobs import auto_resolve, new_and_regressed_to_ongoing, refresh_forecasts
from app.notifications.delivery import run_delivery
from app.retention.jobs import retention_cleanup


def _jobs_interval(ctx: AppContext) -> float:
    return ctx.settings.jobs_interval_seconds


def _webhook_interval(ctx: AppContext) -> float:
    return ctx.settings.webhook_poll_seconds


def _retention_interval(ctx: AppContext) -> float:
    return ctx.settings.retention_interval_seconds


def schedule() -> list[Job]:
    """Every periodic job, in a fixed order."""
    return [
        Job(name="auto_resolve", run=auto_resolve, interval=_jobs_interval),
        Job(name="ongoing", run=new_and_regressed_to_ongoing, interval=_jobs_interval),
        Job(name="forecast_refresh", run=refresh_forecasts, interval=_jobs_interval),
        Job(name="webhook_delivery", run=run_delivery, interval=_webhook_interval),
        Job(name="retention", run=retention_cleanup, interval=_retention_interval),
    ]


def job_named(name: str) -> Job:
    """The scheduled job called ``name`` (KeyError if there is none)."""
    for job in schedule():
        if job.name == name:
            return job
    raise KeyError(name)
