"""The 14-day escalation forecast of SPEC §7 (pure).

From the hourly counts of the 168 whole UTC hours before the computation (only those at or after
the issue's first hour), each of 14 days gets a ceiling; an hour whose count exceeds its day's
ceiling makes an issue archived until escalating escalate.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

WINDOW_HOURS = 168
FORECAST_DAYS = 14
DEFAULT_CEILING = 10
YOUNG_ISSUE_FACTOR = 10


def epoch_hour(moment: datetime) -> int:
    """Whole hours since the Unix epoch (UTC) of an aware datetime."""
    return math.floor(moment.timestamp() / 3600)


def hour_start(hour: int) -> datetime:
    """The UTC start of an epoch hour."""
    return datetime.fromtimestamp(hour * 3600, UTC)


def hour_date(hour: int) -> date:
    """The UTC day of an epoch hour."""
    return hour_start(hour).date()


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


@dataclass(frozen=True)
class ForecastResult:
    """Ceilings for ``start_date`` and the 13 days after it (empty: no forecast)."""

    start_date: date
    ceilings: tuple[int, ...]


def eligible_counts(
    hour_counts: Mapping[int, int], *, computed_hour: int, first_hour: int
) -> list[int]:
    """Counts of the 168 hours before ``computed_hour`` that are not before ``first_hour``."""
    start = max(computed_hour - WINDOW_HOURS, first_hour)
    return [int(hour_counts.get(h, 0)) for h in range(start, computed_hour)]


def forecast_ceilings(counts: Sequence[int], *, computed_hour: int) -> list[int]:
    """Daily ceilings from eligible counts (oldest first, the last one for ``computed_hour - 1``).

    Day 0 is the UTC day of ``computed_hour``.
    """
    if len(counts) > WINDOW_HOURS:
        raise ValueError(f"at most {WINDOW_HOURS} hourly counts")
    if not any(counts):
        return []
    peak = max(counts)
    if len(counts) < WINDOW_HOURS:
        return [YOUNG_ISSUE_FACTOR * peak] * FORECAST_DAYS
    mean = statistics.fmean(counts)
    deviation = statistics.stdev(counts)
    cv = deviation / mean
    bursty = peak * _clamp(5 * math.exp(-0.65 * cv), 2, 5)
    baseline = _clamp((mean + 5 * deviation) / mean, 5, 8) * mean
    first = computed_hour - len(counts)
    weekdays = [hour_date(first + i).weekday() for i in range(len(counts))]
    day0 = hour_date(computed_hour)
    ceilings = []
    for d in range(FORECAST_DAYS):
        weekday = (day0 + timedelta(days=d)).weekday()
        weights = [2 if wd == weekday else 1 for wd in weekdays]
        weighted_mean = sum(w * c for w, c in zip(weights, counts, strict=True)) / sum(weights)
        spike = weighted_mean + baseline
        ceilings.append(int(max(bursty, spike)))
    return ceilings


def compute_forecast(
    hour_counts: Mapping[int, int], *, now: datetime, first_seen: datetime
) -> ForecastResult:
    """The forecast computed at ``now`` for an issue first seen at ``first_seen``."""
    computed_hour = epoch_hour(now)
    counts = eligible_counts(
        hour_counts, computed_hour=computed_hour, first_hour=epoch_hour(first_seen)
    )
    ceilings = forecast_ceilings(counts, computed_hour=computed_hour)
    return ForecastResult(start_date=hour_date(computed_hour), ceilings=tuple(ceilings))


def ceiling_on(ceilings: Sequence[int] | None, start_date: date | None, day: date) -> int:
    """The ceiling for ``day``: the last one after the 14 days, 10 without a forecast."""
    if not ceilings or start_date is None:
        return DEFAULT_CEILING
    index = (day - start_date).days
    index = max(0, min(len(ceilings) - 1, index))
    return int(ceilings[index])


def exceeds(count: int, ceiling: int) -> bool:
    """Whether an hour's count makes the issue escalate."""
    return count > ceiling
