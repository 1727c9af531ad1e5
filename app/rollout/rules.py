"""Rollout stages, whether a flag is on, and the per-process cache of the flag table (pure).

The flags themselves (their kinds and names) belong to the issue types (``issue_types.flags``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from enum import StrEnum


class Stage(StrEnum):
    """Rollout stage: off, limited access, early access, general availability."""

    OFF = "off"
    LA = "la"
    EA = "ea"
    GA = "ga"


def flag_on(
    stage: Stage | str, organizations: Collection[int], organization_id: int, early_adopter: bool
) -> bool:
    """Whether a flag at ``stage`` with this organization list is on for an organization."""
    stage = Stage(stage)
    if stage is Stage.GA:
        return True
    if stage is Stage.OFF:
        return False
    if organization_id in organizations:
        return True
    return stage is Stage.EA and early_adopter


FlagTable = dict[tuple[int, str], tuple[Stage, frozenset[int]]]
"""Every flag row: (type id, kind) → (stage, organization ids)."""


class FlagCache:
    """The flag table, reloaded when older than ``ttl`` seconds (0 = read every time)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._table: FlagTable = {}
        self._loaded_at = -1.0e18
        self._lock = threading.Lock()

    def table(self, load: Callable[[], FlagTable]) -> FlagTable:
        """The flag table, reloading it with ``load`` if stale."""
        now = time.monotonic()
        if now - self._loaded_at <= self.ttl and self.ttl > 0:
            return self._table
        table = load()
        with self._lock:
            self._table, self._loaded_at = table, now
        return table

    def invalidate(self) -> None:
        """Forget the cached table (after a local change)."""
        with self._lock:
            self._loaded_at = -1.0e18
