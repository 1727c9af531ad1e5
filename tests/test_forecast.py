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


# Exact cases where neither clamp decides: the bursty factor 5·exp(-0.65·cv) stays inside
# [2, 5] and the baseline ratio (m + 5s)/m inside [5, 8], so the sample standard deviation s
# (n - 1 = 167 in the denominator) shows in the ceilings. Every day of the week has the
# same pattern, so each day's weekday-weighted mean equals the plain mean m and all 14 ceilings
# are equal. Computed by hand below.


def test_spike_limit_outside_the_clamps_uses_the_sample_deviation() -> None:
    # Each day: 12 hours of 400, then 12 hours of 0 (84 hours of 400 in the week).
    #   m  = 84·400/168 = 200
    #   population variance = (84·(400-200)² + 84·(0-200)²)/168 = 40000
    #   s² = 40000·168/167 (sample) → s = 200·√(168/167) = 200·1.0029895 = 200.59791
    #   cv = s/m = 1.0029895;  baseline ratio 1 + 5·cv = 6.01495 (inside [5, 8])
    #   bursty = 400·5·exp(-0.6519432) = 2000·0.5210323 = 1042.06 (factor 2.605 in [2, 5])
    #   spike  = m + (m + 5s) = 200 + 200 + 1002.98954 = 1402.98954 → 1402
    # (With the population deviation 200 instead: 200 + 200 + 1000 = 1400.)
    counts = ([400] * 12 + [0] * 12) * 7
    assert forecast_ceilings(counts, computed_hour=H) == [1402] * 14


def test_bursty_limit_outside_the_clamps_uses_the_sample_deviation() -> None:
    # Each day: one hour of 700, then 23 hours of 100.
    #   m  = 7·(700 + 23·100)/168 = 3000/24 = 125
    #   mean of squares = (700² + 23·100²)/24 = (490000 + 230000)/24 = 30000
    #   population variance = 30000 - 125² = 14375
    #   s² = 14375·168/167 = 14461.0778 → s = 120.25422
    #   cv = 120.25422/125 = 0.9620338;  baseline ratio 1 + 5·cv = 5.81017 (inside [5, 8])
    #   spike  = 125 + (125 + 5·120.25422) = 851.27
    #   bursty = 700·5·exp(-0.65·0.9620338) = 3500·exp(-0.6253220)
    #          = 3500·0.5352614·exp(-0.0003220) = 3500·0.5350891 = 1872.81 → 1872
    #   (factor 5·0.5350891 = 2.675 inside [2, 5])
    # (With the population deviation 119.89579: cv 0.9591663, bursty 1876.31 → 1876.)
    counts = ([700] + [100] * 23) * 7
    assert forecast_ceilings(counts, computed_hour=H) == [1872] * 14


def test_an_hour_escalates_only_above_its_ceiling() -> None:
    from app.lifecycle.forecast import exceeds

    assert not exceeds(10, 10)
    assert exceeds(11, 10)
