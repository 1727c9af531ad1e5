"""The escalation forecast of SPEC §7, without a database."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, date, datetime, timedelta

import pytest

from app.lifecycle.forecast import (
    ceiling_on,
    compute_forecast,
    eligible_counts,
    epoch_hour,
    forecast_ceilings,
    hour_date,
)

# Monday 2026-11-02 00:00 UTC.
MONDAY = datetime(2026, 11, 2, tzinfo=UTC)
H = epoch_hour(MONDAY)


def test_flat_week_of_six_gives_36_every_day() -> None:
    assert forecast_ceilings([6] * 168, computed_hour=H) == [36] * 14


def test_no_occurrences_gives_no_forecast() -> None:
    assert forecast_ceilings([0] * 168, computed_hour=H) == []
    assert forecast_ceilings([], computed_hour=H) == []


@pytest.mark.parametrize(
    ("counts", "expected"), [([0, 3, 1], 30), ([1] * 167, 10), ([0, 0, 7], 70)]
)
def test_young_issue_gets_ten_times_its_peak(counts: list[int], expected: int) -> None:
    assert forecast_ceilings(counts, computed_hour=H) == [expected] * 14


def test_more_than_a_week_of_counts_is_refused() -> None:
    with pytest.raises(ValueError, match="168"):
        forecast_ceilings([1] * 169, computed_hour=H)


def _reference(counts: list[int], computed_hour: int) -> list[int]:
    """The SPEC formula written out a second way, hour by hour."""
    m = sum(counts) / len(counts)
    s = statistics.stdev(counts)
    bursty = max(counts) * min(5.0, max(2.0, 5 * math.exp(-0.65 * s / m)))
    baseline = min(8.0, max(5.0, (m + 5 * s) / m)) * m
    out = []
    for d in range(14):
        day = hour_date(computed_hour) + timedelta(days=d)
        total = weight = 0.0
        for i, c in enumerate(counts):
            hour_day = hour_date(computed_hour - 168 + i)
            w = 2 if hour_day.weekday() == day.weekday() else 1
            total += w * c
            weight += w
        out.append(int(max(bursty, total / weight + baseline)))
    return out


def test_weekday_weighting_favours_the_busy_weekday() -> None:
    # The week before Monday 2026-11-02: Monday 10-26 .. Sunday 11-01; Tuesday hours are busy.
    counts = []
    for i in range(168):
        weekday = hour_date(H - 168 + i).weekday()
        counts.append(15 if weekday == 1 else (3 if i % 2 == 0 else 0))
    ceilings = forecast_ceilings(counts, computed_hour=H)
    assert ceilings == _reference(counts, H)
    # Day 1 and day 8 are Tuesdays and weigh the busy hours twice.
    assert ceilings == [30, 32, 30, 30, 30, 30, 30, 30, 32, 30, 30, 30, 30, 30]


def test_bursty_limit_wins_for_rare_spikes() -> None:
    counts = [0] * 167 + [100]
    m = 100 / 168
    s = statistics.stdev(counts)
    bursty = 100 * max(2.0, 5 * math.exp(-0.65 * s / m))
    assert forecast_ceilings(counts, computed_hour=H) == [int(bursty)] * 14


def test_eligible_counts_skip_hours_before_the_issue_and_fill_zeros() -> None:
    counts = {H - 3: 4, H - 1: 2, H - 200: 9, H: 5}
    assert eligible_counts(counts, computed_hour=H, first_hour=H - 3) == [4, 0, 2]
    full = eligible_counts(counts, computed_hour=H, first_hour=H - 1000)
    assert len(full) == 168
    assert sum(full) == 6


def test_compute_forecast_starts_on_the_day_of_computation() -> None:
    now = MONDAY + timedelta(hours=13, minutes=30)
    first_seen = now - timedelta(days=30)
    counts = {epoch_hour(now) - i: 6 for i in range(1, 169)}
    result = compute_forecast(counts, now=now, first_seen=first_seen)
    assert result.start_date == date(2026, 11, 2)
    assert result.ceilings == (36,) * 14


def test_compute_forecast_counts_the_first_hour_of_a_young_issue() -> None:
    now = MONDAY + timedelta(hours=5)
    first_seen = MONDAY + timedelta(minutes=59)
    result = compute_forecast({H: 3, H + 4: 1}, now=now, first_seen=first_seen)
    assert result.ceilings == (30,) * 14


@pytest.mark.parametrize(
    ("offset_days", "expected"), [(-1, 0), (0, 0), (5, 5), (13, 13), (14, 13), (40, 13)]
)
def test_ceiling_lookup_by_day(offset_days: int, expected: int) -> None:
    start = date(2026, 11, 2)
    ceilings = list(range(14))
    assert ceiling_on(ceilings, start, start + timedelta(days=offset_days)) == expected


def test_ceiling_without_forecast_is_ten() -> None:
    assert ceiling_on(None, None, date(2026, 11, 2)) == 10
    assert ceiling_on([], date(2026, 11, 2), date(2026, 11, 2)) == 10


def test_unclamped_week_uses_the_sample_standard_deviation() -> None:
    # Hours alternate 0 and 200: mean m = 100, sample deviation s = 100 * sqrt(168 / 167)
    # = 100.29895 (the population deviation would be exactly 100). Neither clamp decides:
    # (m + 5s) / m = 6.0149 lies in [5, 8], 5 * exp(-0.65 * s / m) = 2.6015 lies in [2, 5].
    # Every day has 12 zero and 12 busy hours, so each weighted mean is 100 and the spike
    # 100 + 601.49 = 701.49 beats the bursty limit 200 * 2.6015 = 520.3: 701 (pstdev gives 700).
    counts = [0 if i % 2 == 0 else 200 for i in range(168)]
    assert forecast_ceilings(counts, computed_hour=H) == [701] * 14


def test_an_hour_escalates_only_above_its_ceiling() -> None:
    from app.lifecycle.forecast import exceeds

    assert not exceeds(10, 10)
    assert exceeds(11, 10)
