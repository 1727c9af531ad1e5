"""The counting rules of the ingest pipeline (app/occurrences/ingest/rules.py), without a database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.issues.status import GroupStatus, GroupSubStatus
from app.occurrences.ingest.rules import (
    Issue,
    count_in,
    counts_as_resolved,
    epoch_hour,
    join,
    open_issue,
)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


@dataclass(frozen=True)
class Occ:
    id: str
    detection_time: datetime
    issue_title: str = "title"
    subtitle: str = "sub"
    culprit: str = "culprit"
    level: str = "error"


def stored(status: int = GroupStatus.UNRESOLVED, *, last_seen: datetime = T0) -> Issue:
    return Issue(
        ref=7,
        id=7,
        project_id=1,
        type_id=1,
        hash="h",
        status=status,
        substatus=GroupSubStatus.ONGOING if status == GroupStatus.UNRESOLVED else None,
        first_seen=T0 - timedelta(hours=2),
        last_seen=last_seen,
        priority=50,
        priority_locked=False,
        newest_time=last_seen,
    )


def test_counting_moves_the_times_and_takes_the_newest_texts() -> None:
    issue = stored()
    count_in(issue, Occ("a", T0 + timedelta(minutes=5), issue_title="new"))
    assert (issue.added, issue.last_seen, issue.last_changed) == (
        1,
        T0 + timedelta(minutes=5),
        True,
    )
    assert not issue.first_changed
    assert issue.newest is not None and issue.newest_changed
    assert (issue.newest.id, issue.newest.issue_title) == ("a", "new")
    assert issue.newest_time == T0 + timedelta(minutes=5)


def test_an_older_occurrence_moves_first_seen_and_keeps_the_newest_texts() -> None:
    issue = stored()
    early = T0 - timedelta(hours=5)
    count_in(issue, Occ("b", early))
    assert (issue.first_seen, issue.first_changed) == (early, True)
    assert (issue.last_seen, issue.last_changed) == (T0, False)
    assert issue.newest is None and not issue.newest_changed
    assert issue.newest_time == T0


def test_an_occurrence_as_old_as_the_newest_one_takes_its_place() -> None:
    issue = stored()
    count_in(issue, Occ("tie", T0))
    assert issue.newest is not None and issue.newest.id == "tie" and issue.newest_changed
    assert not issue.last_changed  # the same instant: last_seen is unchanged


@pytest.mark.parametrize(
    ("status", "age_hours", "auto", "last_seen", "expected"),
    [
        (GroupStatus.RESOLVED, 0, False, NOW, True),
        (GroupStatus.IGNORED, 1, True, T0 - timedelta(days=9), False),
        (GroupStatus.UNRESOLVED, 0, True, T0 - timedelta(days=9), False),
        (GroupStatus.UNRESOLVED, 1, False, T0 - timedelta(days=9), False),
        (GroupStatus.UNRESOLVED, 1, True, NOW - timedelta(hours=1), False),
        (GroupStatus.UNRESOLVED, 1, True, NOW - timedelta(hours=1, microseconds=1), True),
    ],
)
def test_counts_as_resolved(
    status: int, age_hours: int, auto: bool, last_seen: datetime, expected: bool
) -> None:
    issue = stored(status, last_seen=last_seen)
    assert (
        counts_as_resolved(issue, now=NOW, resolve_age_hours=age_hours, auto_resolve=auto)
        is expected
    )


def test_joining_a_resolved_issue_regresses_it_once() -> None:
    issue = stored(GroupStatus.RESOLVED)
    first = join(issue, Occ("r1", NOW), None, now=NOW, resolve_age_hours=0, auto_resolve=True)
    second = join(issue, Occ("r2", NOW), None, now=NOW, resolve_age_hours=0, auto_resolve=True)
    assert (first, second) == ("regressed", "grouped")
    assert issue.status == GroupStatus.UNRESOLVED and issue.substatus == GroupSubStatus.REGRESSED
    assert issue.status_changed and issue.substatus_changed_at == NOW
    assert issue.regressed_by == ["r1"]
    assert (issue.added, issue.bumps) == (2, 2)


def test_joining_sets_the_priority_unless_a_person_locked_it() -> None:
    issue = stored()
    join(issue, Occ("p", T0), 75, now=NOW, resolve_age_hours=0, auto_resolve=True)
    assert (issue.priority, issue.priority_changed) == (75, True)
    locked = stored()
    locked.priority_locked = True
    join(locked, Occ("p", T0), 75, now=NOW, resolve_age_hours=0, auto_resolve=True)
    assert (locked.priority, locked.priority_changed) == (50, False)
    same = stored()
    join(same, Occ("p", T0), 50, now=NOW, resolve_age_hours=0, auto_resolve=True)
    assert not same.priority_changed  # unchanged: its index entry is not rewritten


def test_occurrences_of_an_ignored_issue_are_kept_for_its_rules() -> None:
    issue = stored(GroupStatus.IGNORED)
    outcome = join(issue, Occ("i", T0), None, now=NOW, resolve_age_hours=1, auto_resolve=True)
    assert outcome == "grouped"
    assert issue.ignored_times == [T0]
    assert not stored().ignored_times


def test_a_new_issue_counts_its_first_occurrence() -> None:
    occ = Occ("n", T0)
    issue = open_issue(-1, 1, 1, "h", occ, 25, assignee="ann", notify=False)
    assert (issue.added, issue.bumps, issue.new) == (1, 1, True)
    assert (issue.first_seen, issue.last_seen, issue.newest) == (T0, T0, occ)
    assert (issue.priority, issue.initial_priority, issue.assignee) == (25, 25, "ann")
    assert issue.status == GroupStatus.UNRESOLVED and issue.substatus == GroupSubStatus.NEW
    assert issue.id is None and not issue.notify_created


def test_epoch_hour() -> None:
    assert epoch_hour(datetime(1970, 1, 1, 2, 59, 59, tzinfo=UTC)) == 2
    assert epoch_hour(datetime(1970, 1, 1, 3, tzinfo=UTC)) == 3
