"""Issues this process counted into lately (pure): the counter journal's hot set.

A fold costs about twice a direct UPDATE per issue, so journaling pays off only for an issue
that several group commits touch between two folds. An issue is journaled when this process
counted into it since the fold before last; its first touch after a quiet spell is written at
once. A workload spread over many issues that each see an occurrence now and then (a large
fingerprint pool) thus keeps writing directly, and a few hot issues are folded.
"""

from __future__ import annotations

from collections.abc import Iterable


class RecentIssues:
    """Issue ids counted into since the last fold, and in the interval before it.

    Also the time of the last fold when due: the context holds one per process.
    """

    def __init__(self) -> None:
        # time.monotonic() of the process's last fold when due (journal.fold_if_due).
        self.fold_at = 0.0
        # time.monotonic() of the last look for other processes' leftovers (fold_if_stale).
        self.checked_at = 0.0
        # time.monotonic() of this process's last committed journal row (journal.idle_wait).
        self.journaled_at = 0.0
        self._current: set[int] = set()
        self._previous: set[int] = set()

    def hot(self, issue_id: int) -> bool:
        """Whether the issue was counted into since the fold before last."""
        return issue_id in self._current or issue_id in self._previous

    def touch(self, issue_ids: Iterable[int]) -> None:
        """Note issues counted into now."""
        self._current.update(issue_ids)

    def rotate(self) -> None:
        """A fold ran: the current interval becomes the previous one."""
        self._previous, self._current = self._current, set()
