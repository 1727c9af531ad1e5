"""Retention rules (pure): what a cleanup pass deletes, as cutoffs from now.

A row is expired when its time is strictly before its cutoff. Hourly counts are kept for the
longer of the retention and the 8 days the escalation forecast reads (168 hours before the
hour it is computed in, plus that hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.lifecycle.forecast import epoch_hour

FORECAST_DAYS = 8

# Tables a pass deletes from, in the order it reports them.
TABLES = (
    "occurrences",
    "events",
    "groups",
    "group_hashes",
    "activities",
    "hourly_counts",
    "forecasts",
    "pending_windows",
    "webhook_deliveries",
    "status_change_records",
)


@dataclass(frozen=True)
class Cutoffs:
    """The moments before which a project's rows are expired."""

    # Occurrences by detection_time, issues by last_seen, delivery-log entries and status-change
    # ids by created_at.
    retention: datetime
    # Hourly counts whose hour is before this epoch hour.
    hourly_hour: int


def cutoffs(now: datetime, retention_days: int) -> Cutoffs:
    """The cutoffs of a project with ``retention_days`` at ``now``."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    retention = now - timedelta(days=retention_days)
    counts_kept = timedelta(days=max(retention_days, FORECAST_DAYS))
    # An hour is expired once all of it lies before the cutoff: its start is an hour earlier.
    return Cutoffs(retention=retention, hourly_hour=epoch_hour(now - counts_kept))


@dataclass(frozen=True)
class BatchSizer:
    """Bounds of the adaptive batch size: as large as fits in ``target_seconds``."""

    minimum: int
    maximum: int
    target_seconds: float

    def next(self, size: int, elapsed: float) -> int:
        """The size of the next batch after one of ``size`` rows took ``elapsed`` seconds.

        Over the target: shrink in proportion (at least halving). Well under it: grow by half.
        """
        if elapsed > self.target_seconds:
            scaled = int(size * self.target_seconds / elapsed)
            return max(self.minimum, min(scaled, size // 2))
        if elapsed < self.target_seconds / 2:
            return min(self.maximum, size + max(1, size // 2))
        return size
