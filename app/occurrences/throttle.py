"""Applies the per-project ingest rate limit of the settings to a request's items."""

from __future__ import annotations

from typing import Any

from app.auth.principal import Principal
from app.context import AppContext
from app.errors import RateLimited
from app.metrics import RATE_LIMITED
from app.ratelimit import TokenBuckets, retry_after_seconds


def count_by_project(items: object) -> dict[int, int]:
    """How many items name each integer ``project_id`` (others are left to validation)."""
    counts: dict[int, int] = {}
    if not isinstance(items, list):
        items = [items]
    assert isinstance(items, list)
    for item in items:
        if not isinstance(item, dict):
            continue
        project = item.get("project_id")
        if isinstance(project, int) and not isinstance(project, bool):
            counts[project] = counts.get(project, 0) + 1
    return counts


def _buckets(ctx: AppContext) -> TokenBuckets | None:
    rate = ctx.settings.ingest_rate_limit_per_second
    if rate <= 0:
        return None
    if ctx.ingest_buckets is None:
        ctx.ingest_buckets = TokenBuckets(rate=rate, burst=ctx.settings.ingest_rate_limit_burst)
    return ctx.ingest_buckets


def enforce_ingest_rate(ctx: AppContext, principal: Principal, items: Any) -> None:
    """Raise 429 ``rate_limited`` when a project of ``items`` is over its rate; else take tokens.

    Buckets are keyed by the caller's organization and the project, so a key of another
    organization (whose items will be refused with 403 anyway) cannot spend a project's budget.
    """
    buckets = _buckets(ctx)
    if buckets is None:
        return
    counts = count_by_project(items)
    if not counts:
        return
    caller = "admin" if principal.is_admin else principal.organization_id
    wait = buckets.take({(caller, project): n for project, n in counts.items()})
    if wait <= 0:
        return
    retry_after = retry_after_seconds(wait)
    RATE_LIMITED.inc(sum(counts.values()))
    raise RateLimited(
        f"ingest rate limit of {buckets.rate:g}/s per project exceeded; retry later",
        retry_after=retry_after,
        details={
            "projects": sorted(counts),
            "limit_per_second": buckets.rate,
            "burst": buckets.burst,
            "retry_after": retry_after,
        },
    )
