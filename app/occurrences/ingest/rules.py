"""Counting rules (pure): what one occurrence changes in the issue it joins or opens.

An :class:`Issue` is the in-memory state of one issue touched by an ingest transaction, as
loaded (or as created in it). Every occurrence of the transaction is decided against it in order,
once; the writer turns the final state into one row insert (new issue) or one UPDATE (existing
issue) whatever the number of occurrences counted in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from app.issues.status import GroupStatus, GroupSubStatus

# Hourly counts use the forecast's hour (one definition); the ingest modules import it from here.
from app.lifecycle.forecast import epoch_hour as epoch_hour

# The statuses counting compares with, read once: an Enum member looked up on its class costs
# about 70 ns on Python 3.11, and ``join`` compared three per occurrence.
RESOLVED, UNRESOLVED, IGNORED = GroupStatus.RESOLVED, GroupStatus.UNRESOLVED, GroupStatus.IGNORED


class Counted(Protocol):
    """What counting needs of an occurrence: a validated one, or a stored pending one."""

    @property
    def id(self) -> str: ...
    @property
    def issue_title(self) -> str: ...
    @property
    def subtitle(self) -> str: ...
    @property
    def culprit(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def detection_time(self) -> datetime: ...


@dataclass(eq=False, slots=True)
class Issue:
    """One issue as an ingest transaction sees it; identity-hashed (a key of the batch's maps).

    ``ref`` is the batch's key for it: the row id of an existing issue, a negative number for
    one created in the batch (whose id is known once inserted, then stored in ``id``).
    """

    ref: int
    id: int | None
    project_id: int
    type_id: int
    hash: str
    status: int
    substatus: int | None
    first_seen: datetime
    last_seen: datetime
    priority: int
    priority_locked: bool
    # The detection time of the occurrence whose texts the issue shows; ``newest`` is that
    # occurrence once one of this transaction is it (the texts are written from it).
    newest_time: datetime
    newest: Counted | None = None
    new: bool = False
    # Of a new issue only: who it is assigned to, whether its creation notifies, its first
    # priority.
    assignee: str | None = None
    notify_created: bool = True
    initial_priority: int = 0
    # ``last_seen`` as loaded (``last_seen`` moves as occurrences are counted in).
    stored_last_seen: datetime = field(init=False)
    # Occurrences counted in (times_seen grows by it) and answer changes (version grows by it).
    added: int = 0
    bumps: int = 0
    first_changed: bool = False
    last_changed: bool = False
    newest_changed: bool = False
    priority_changed: bool = False
    status_changed: bool = False
    substatus_changed_at: datetime | None = None
    # Occurrence ids that regressed the issue, and detection times counted while it is ignored.
    regressed_by: list[str] = field(default_factory=list)
    ignored_times: list[datetime] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stored_last_seen = self.last_seen


def count_in(issue: Issue, occ: Counted) -> None:
    """Count one occurrence: times seen, first/last seen, and the newest one's texts."""
    issue.added += 1
    moment = occ.detection_time
    if moment > issue.last_seen:
        issue.last_seen = moment
        issue.last_changed = True
    if moment < issue.first_seen:
        issue.first_seen = moment
        issue.first_changed = True
    if moment >= issue.newest_time:
        issue.newest = occ
        issue.newest_time = moment
        issue.newest_changed = True


def counts_as_resolved(
    issue: Issue, *, now: datetime, resolve_age_hours: int, auto_resolve: bool
) -> bool:
    """Resolved, or unresolved and unseen for longer than the project's auto-resolve age."""
    status = issue.status
    if status == RESOLVED:
        return True
    if status != UNRESOLVED or resolve_age_hours <= 0 or not auto_resolve:
        return False
    return issue.last_seen < now - timedelta(hours=resolve_age_hours)


def regress(issue: Issue, now: datetime, occurrence_id: str) -> None:
    """The issue comes back: unresolved, regressed (resolution and archive conditions cleared)."""
    issue.status = GroupStatus.UNRESOLVED
    issue.substatus = GroupSubStatus.REGRESSED
    issue.substatus_changed_at = now
    issue.status_changed = True
    issue.regressed_by.append(occurrence_id)


def join(
    issue: Issue,
    occ: Counted,
    priority: int | None,
    *,
    now: datetime,
    resolve_age_hours: int,
    auto_resolve: bool,
) -> str:
    """Count an occurrence into an issue it reached; ``grouped`` or ``regressed``."""
    outcome = "grouped"
    if counts_as_resolved(
        issue, now=now, resolve_age_hours=resolve_age_hours, auto_resolve=auto_resolve
    ):
        regress(issue, now, occ.id)
        outcome = "regressed"
    count_in(issue, occ)
    if priority is not None and not issue.priority_locked and priority != issue.priority:
        issue.priority = priority
        issue.priority_changed = True
    issue.bumps += 1  # the ETag follows every change of the answer, counts included
    if issue.status == IGNORED:
        issue.ignored_times.append(occ.detection_time)
    return outcome


def open_issue(
    ref: int,
    project_id: int,
    type_id: int,
    primary: str,
    occ: Counted,
    priority: int,
    *,
    assignee: str | None,
    notify: bool,
) -> Issue:
    """A new issue opened by an occurrence (counted in; ``priority`` already defaulted)."""
    moment = occ.detection_time
    return Issue(
        ref=ref,
        id=None,
        project_id=project_id,
        type_id=type_id,
        hash=primary,
        # Plain ints: sqlite3 binds an IntEnum member through its slow adaptation path.
        status=int(GroupStatus.UNRESOLVED),
        substatus=int(GroupSubStatus.NEW),
        first_seen=moment,
        last_seen=moment,
        priority=priority,
        priority_locked=False,
        newest_time=moment,
        newest=occ,
        new=True,
        assignee=assignee,
        notify_created=notify,
        initial_priority=priority,
        added=1,
        bumps=1,
    )
