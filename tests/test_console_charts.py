"""The console's pure drawing rules: sparklines, the 7-day chart and relative times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.console import charts
from app.lifecycle.forecast import epoch_hour

NOW = datetime(2026, 11, 2, 12, 30, tzinfo=UTC)


def test_the_window_has_every_hour_zeros_included() -> None:
    last = epoch_hour(NOW)
    window = charts.hour_counts_window(
        {last: 3, last - 5: 1, last - 24: 9}, last_hour=last, hours=24
    )
    assert len(window) == 24
    assert window[-1] == (last, 3) and window[0] == (last - 23, 0)
    assert sum(c for _, c in window) == 4


def test_sparkline_bars_scale_to_the_peak() -> None:
    spark = charts.sparkline([0, 5, 10, 0, 1], width=50, height=21)
    # One bar per non-empty hour, bottom-aligned: x, top, width, height.
    assert spark.path == "M10 11h9v10h-9zM20 1h9v20h-9zM40 19h9v2h-9z"
    assert (spark.bars, spark.total, spark.peak) == (3, 16, 10)


def test_a_small_count_still_shows_a_bar() -> None:
    spark = charts.sparkline([1000, 1], width=20, height=20)
    assert spark.path.endswith("M10 19h9v1h-9z")


def test_an_empty_sparkline_has_no_bars() -> None:
    spark = charts.sparkline([0] * 24)
    assert (spark.path, spark.bars, spark.total, spark.peak) == ("", 0, 0, 0)


def test_the_chart_draws_each_days_ceiling_over_its_hours() -> None:
    last = epoch_hour(NOW)
    window = charts.hour_counts_window({last: 8}, last_hour=last, hours=charts.CHART_HOURS)
    start = NOW.date() - timedelta(days=2)
    chart = charts.hourly_chart(window, ceilings=list(range(100, 114)), start_date=start)
    by_day = {s.day: s.ceiling for s in chart.ceilings}
    assert by_day[str(NOW.date())] == 102
    assert by_day[str(start)] == 100
    # Days before the forecast's start use its first ceiling.
    assert by_day[str(NOW.date() - timedelta(days=6))] == 100
    assert chart.scale_max == 102  # the largest ceiling shown: today's
    today = next(s for s in chart.ceilings if s.day == str(NOW.date()))
    assert today.x2 == chart.width  # the last day reaches the right edge
    assert today.y == round(chart.height - 102 / chart.scale_max * chart.height, 2)
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.count == 8


def test_the_chart_without_a_forecast_has_no_ceilings() -> None:
    last = epoch_hour(NOW)
    window = charts.hour_counts_window({last - 1: 4}, last_hour=last, hours=charts.CHART_HOURS)
    chart = charts.hourly_chart(window)
    assert chart.ceilings == () and chart.scale_max == 4 and chart.total == 4
    assert len(chart.day_ticks) in (7, 8)
    assert charts.hourly_chart(window, ceilings=[5] * 14, start_date=None).ceilings == ()


def test_relative_times_read_like_a_person_says_them() -> None:
    assert charts.relative_time(NOW - timedelta(seconds=10), NOW) == "just now"
    assert charts.relative_time(NOW - timedelta(minutes=3), NOW) == "3 min ago"
    assert charts.relative_time(NOW - timedelta(minutes=59), NOW) == "59 min ago"
    assert charts.relative_time(NOW - timedelta(hours=5), NOW) == "5 h ago"
    assert charts.relative_time(NOW - timedelta(days=1), NOW) == "1 day ago"
    assert charts.relative_time(NOW - timedelta(days=3), NOW) == "3 days ago"
    assert charts.relative_time(NOW - timedelta(days=400), NOW) == "2025-09-28"
    assert charts.relative_time(NOW + timedelta(hours=2), NOW) == "in 2 h"
    assert charts.exact_time(NOW) == "2026-11-02 12:30:00 UTC"
