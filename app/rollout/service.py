"""Reading rollout flags, with a short per-process cache so every process sees changes quickly."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import AppContext
from app.issue_types.registry import IssueType
from app.models import RolloutFlag
from app.rollout.rules import FlagKind, Stage, flag_on

FlagTable = dict[tuple[int, str], tuple[Stage, frozenset[int]]]


class FlagCache:
    """Every flag row, reloaded when older than ``ttl`` seconds (0 = read every time)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._table: FlagTable = {}
        self._loaded_at = -1.0e18
        self._lock = threading.Lock()

    def table(self, session: Session) -> FlagTable:
        """The flag table, reloading it if stale."""
        now = time.monotonic()
        if now - self._loaded_at <= self.ttl and self.ttl > 0:
            return self._table
        rows = session.scalars(select(RolloutFlag)).all()
        table: FlagTable = {
            (r.type_id, r.kind): (Stage(r.stage), frozenset(r.organizations or [])) for r in rows
        }
        with self._lock:
            self._table, self._loaded_at = table, now
        return table

    def invalidate(self) -> None:
        """Forget the cached table (after a local change)."""
        with self._lock:
            self._loaded_at = -1.0e18


def flag_cache(ctx: AppContext) -> FlagCache:
    """The context's flag cache."""
    cache = ctx.extras.get("flag_cache")
    if cache is None:
        cache = ctx.extras["flag_cache"] = FlagCache(ctx.settings.registry_refresh_seconds)
    assert isinstance(cache, FlagCache)
    return cache


def is_enabled(
    ctx: AppContext,
    session: Session,
    issue_type: IssueType,
    kind: FlagKind,
    organization_id: int,
    early_adopter: bool,
) -> bool:
    """Whether ``kind`` is on for this type and organization (released types: always)."""
    if issue_type.released:
        return True
    stage, orgs = (
        flag_cache(ctx)
        .table(session)
        .get((issue_type.type_id, kind.value), (Stage.OFF, frozenset()))
    )
    return flag_on(stage, orgs, organization_id, early_adopter)
