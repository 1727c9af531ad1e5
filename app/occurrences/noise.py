"""Noise windows (pure): when pending occurrences become an issue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

_Answer = TypeVar("_Answer", covariant=True)


class _EndsAt(Protocol[_Answer]):
    """A window's end: a datetime (answers a bool) or a column (answers an SQL condition)."""

    def __le__(self, moment: datetime, /) -> _Answer: ...


@dataclass(frozen=True)
class Window:
    """A fixed window opened by the first pending occurrence's detection time."""

    count: int
    started_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Admission:
    """The window after one more occurrence, and whether it reached the threshold."""

    window: Window
    restarted: bool
    reached: bool


def _later(moment: datetime, span: timedelta) -> datetime:
    """``moment + span``, held at the largest datetime instead of overflowing."""
    try:
        return moment + span
    except OverflowError:
        return datetime.max.replace(tzinfo=moment.tzinfo)


def window_closed(ends_at: _EndsAt[_Answer], now: datetime) -> _Answer:
    """Whether a window is over at ``now``: an occurrence detected then opens a new one, and
    retention deletes the window (with its pending occurrences) once no issue came of it.

    The one definition of the rule, in Python and in SQL: given ``PendingWindow.window_ends_at``
    it returns the WHERE condition the retention pass uses.
    """
    return ends_at <= now


def admit(
    window: Window | None, detection_time: datetime, *, ignore_limit: int, expiry: timedelta
) -> Admission:
    """Count one occurrence into the window (a new one at or past the end restarts at 1).

    An occurrence earlier than the window's start still counts in it: the window is fixed.
    """
    if window is None or window_closed(window.ends_at, detection_time):
        new = Window(1, detection_time, _later(detection_time, expiry))
        return Admission(new, window is not None, new.count >= ignore_limit)
    new = Window(window.count + 1, window.started_at, window.ends_at)
    return Admission(new, False, new.count >= ignore_limit)


def quota_exceeded(created_in_window: int, limit: int) -> bool:
    """Whether a creation quota with ``limit`` is used up."""
    return created_in_window >= limit
