"""What the console draws, as numbers (pure): sparklines, the 7-day chart, relative times.

The templates turn these shapes into inline SVG; nothing here knows HTML, FastAPI or SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.lifecycle.forecast import hour_date, hour_start

SPARK_HOURS = 24
CHART_HOURS = 168


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its box in SVG user units and what it stands for."""

    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


@dataclass(frozen=True)
class Sparkline:
    """The last hours of an issue as bars in a ``width`` × ``height`` box.

    ``path`` draws every non-empty hour as one bar of a single SVG path (one element per row,
    not one per hour: a stream page has 25 of them); empty hours show as the baseline.
    """

    width: int
    height: int
    path: str
    bars: int
    total: int
    peak: int


@dataclass(frozen=True)
class CeilingStep:
    """One day's escalation ceiling drawn as a horizontal segment over the chart."""

    x1: float
    x2: float
    y: float
    ceiling: int
    day: str


@dataclass(frozen=True)
class HourlyChart:
    """Hourly counts over 7 days, with the forecast's daily ceilings when there is one."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    ceilings: tuple[CeilingStep, ...]
    scale_max: int
    day_ticks: tuple[tuple[float, str], ...]
    total: int


def hour_counts_window(
    counts: Mapping[int, int], *, last_hour: int, hours: int
) -> list[tuple[int, int]]:
    """(epoch hour, count) of the ``hours`` hours ending with ``last_hour``, zeros included."""
    first = last_hour - hours + 1
    return [(h, int(counts.get(h, 0))) for h in range(first, last_hour + 1)]


def _hour_label(hour: int) -> str:
    return hour_start(hour).strftime("%Y-%m-%d %H:00 UTC")


def sparkline(counts: Sequence[int], *, width: int = 96, height: int = 20) -> Sparkline:
    """Bars scaled to the window's peak (oldest hour first), at least 1 unit tall when not 0.

    Whole units only: with the default 96 × 20 box each of 24 hours gets 4 units (a 3-unit bar
    and a gap), and integer formatting keeps 25 sparklines well under a millisecond.
    """
    peak = max(counts, default=0)
    step = width / max(len(counts), 1)
    bar = max(int(step) - 1, 1)
    top = height - 1
    parts = []
    for i, count in enumerate(counts):
        if count:
            h = max(1, round(count * top / peak))
            parts.append(f"M{int(i * step)} {height - h}h{bar}v{h}h-{bar}z")
    return Sparkline(width, height, "".join(parts), len(parts), sum(counts), peak)


def hourly_chart(
    window: Sequence[tuple[int, int]],
    *,
    ceilings: Sequence[int] = (),
    start_date: date | None = None,
    width: int = 840,
    height: int = 160,
) -> HourlyChart:
    """The 7-day chart; ``ceilings`` (from ``start_date`` on) are drawn for the days shown."""
    days_shown = _days(window)
    day_ceilings = {}
    if ceilings and start_date is not None:
        last = len(ceilings) - 1
        for day in days_shown:
            index = max(0, min(last, (day - start_date).days))
            day_ceilings[day] = int(ceilings[index])
    peak = max((c for _, c in window), default=0)
    scale_max = max(peak, *day_ceilings.values(), 1) if day_ceilings else max(peak, 1)
    step = width / max(len(window), 1)
    bars = []
    for i, (hour, count) in enumerate(window):
        h = count / scale_max * height if count else 0.0
        bars.append(
            Bar(
                x=round(i * step, 2),
                y=round(height - h, 2),
                width=round(max(step - 0.5, 0.5), 2),
                height=round(h, 2),
                count=count,
                label=_hour_label(hour),
            )
        )
    steps = []
    ticks = []
    for day in days_shown:
        indexes = [i for i, (hour, _) in enumerate(window) if hour_date(hour) == day]
        x1, x2 = indexes[0] * step, (indexes[-1] + 1) * step
        ticks.append((round(x1, 2), day.strftime("%a %d")))
        if day in day_ceilings:
            ceiling = day_ceilings[day]
            y = height - min(ceiling, scale_max) / scale_max * height
            steps.append(CeilingStep(round(x1, 2), round(x2, 2), round(y, 2), ceiling, str(day)))
    return HourlyChart(
        width, height, tuple(bars), tuple(steps), scale_max, tuple(ticks), sum(c for _, c in window)
    )


def _days(window: Sequence[tuple[int, int]]) -> list[date]:
    days: list[date] = []
    for hour, _ in window:
        day = hour_date(hour)
        if not days or days[-1] != day:
            days.append(day)
    return days


def relative_time(moment: datetime, now: datetime) -> str:
    """``just now``, ``3 min ago``, ``5 h ago``, ``2 days ago`` (``in …`` for the future)."""
    delta = now - moment
    future = delta < timedelta(0)
    seconds = abs(delta.total_seconds())
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        text = f"{max(1, round(seconds / 60))} min"
    elif seconds < 86400:
        text = f"{round(seconds / 3600)} h"
    elif seconds < 86400 * 60:
        days = round(seconds / 86400)
        text = f"{days} day" if days == 1 else f"{days} days"
    else:
        return moment.astimezone(UTC).strftime("%Y-%m-%d")
    return f"in {text}" if future else f"{text} ago"


def exact_time(moment: datetime) -> str:
    """The exact UTC time shown on hover."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
