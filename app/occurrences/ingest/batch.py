"""The state of one ingest transaction, and its reads (each made once for the whole group).

Reads: the projects, the stored occurrences among the group's ids, the issues reached by the
group's hashes (locked in id order on PostgreSQL), the events referenced by id, and the projects
that have webhooks. Everything the decisions change is kept here until the writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from app.context import AppContext
from app.issue_types.flags import FlagKind
from app.issue_types.registry import IssueType
from app.models import Event, Group
from app.occurrences.ingest import driver
from app.occurrences.ingest import statements as st
from app.occurrences.ingest.rules import Issue
from app.occurrences.noise import quota_exceeded
from app.occurrences.validation import ValidOccurrence
from app.rollout.service import is_enabled


def priority_of(occ: ValidOccurrence, issue_type: IssueType) -> int:
    """The occurrence's priority, else its type's default, as a plain ``int``.

    The default is an IntEnum member: sqlite3 binds an ``int`` subclass through its adaptation
    protocol (an AttributeError raised and cleared inside), about 0.35 µs per parameter.
    """
    priority = occ.priority
    return priority if priority is not None else int(issue_type.default_priority)


@dataclass(eq=False, slots=True)
class Row:
    """An occurrence queued for the insert; ``issue`` is None while it is pending."""

    occ: ValidOccurrence
    issue: Issue | None
    pending_hash: str | None
    priority: int


class Txn:
    """The ingest transaction's connection, and an ORM session on it opened only when needed.

    The common occurrence needs no ORM: the pipeline's statements go to the connection's DBAPI
    cursor. Pending windows, rollout flags of unreleased types, regressions and notifications
    open the session, which joins the connection's transaction (and never commits it).
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The session on the transaction's connection (opened on first use)."""
        if self._session is None:
            self._session = Session(bind=self.conn, expire_on_commit=False)
        return self._session

    @property
    def session_opened(self) -> bool:
        """Whether anything used the session (its changes then need a flush)."""
        return self._session is not None

    def close(self) -> None:
        """Close the session, if one was opened (the connection's transaction is untouched)."""
        if self._session is not None:
            self._session.close()
            self._session = None


@dataclass
class Batch:
    """One ingest transaction: its reads, and every change decided so far."""

    txn: Txn
    ctx: AppContext
    now: datetime
    sql: st.Statements
    cur: Any  # the DBAPI cursor of the transaction's connection
    projects: dict[int, st.ProjectInfo]
    times: st.Times
    # (project, hash) -> the issue that has it (loaded or created in this batch).
    known: dict[tuple[int, str], Issue] = field(default_factory=dict)
    existing: dict[tuple[int, str], int | None] = field(default_factory=dict)
    # Occurrences queued for the insert, by (project, id): later copies are duplicates.
    rows: dict[tuple[int, str], Row] = field(default_factory=dict)
    created: list[Issue] = field(default_factory=list)
    touched: dict[int, Issue] = field(default_factory=dict)
    links: list[tuple[int, str, Issue]] = field(default_factory=list)
    hourly: dict[tuple[Issue, int], int] = field(default_factory=lambda: defaultdict(int))
    events: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    # Pending occurrences stored earlier that an issue created here adopts: (project, hash).
    adopted: list[tuple[int, str, Issue]] = field(default_factory=list)
    webhook_projects: set[int] = field(default_factory=set)
    # Whether the writes include a counter journal row (journal.committed_journal after commit).
    journaled: bool = False
    _quota: dict[tuple[int, int], int] = field(default_factory=dict)
    _created_by_type: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    _flags: dict[tuple[int, str, int], bool] = field(default_factory=dict)

    @property
    def session(self) -> Session:
        """The ORM session of the transaction (opened on first use: see :class:`Txn`)."""
        return self.txn.session

    def flag(self, issue_type: IssueType, kind: FlagKind, project: st.ProjectInfo) -> bool:
        """A rollout flag of the type for the project's organization (once per batch)."""
        if issue_type.released:
            return True
        key = (issue_type.type_id, kind.value, project.organization_id)
        found = self._flags.get(key)
        if found is None:
            found = self._flags[key] = is_enabled(
                self.ctx,
                self.session,
                issue_type,
                kind,
                project.organization_id,
                project.early_adopter,
            )
        return found

    def created_in_window(self, project_id: int, type_id: int, window_seconds: int) -> int:
        """Issues of a project and type created within the quota window, this batch's included."""
        key = (project_id, type_id)
        base = self._quota.get(key)
        if base is None:
            since = self.now - timedelta(seconds=window_seconds)
            count = self.session.scalar(
                select(func.count())
                .select_from(Group)
                .where(
                    Group.project_id == project_id,
                    Group.type_id == type_id,
                    Group.created_at > since,
                )
            )
            base = self._quota[key] = int(count or 0)
        return base + self._created_by_type[key]

    def quota_used_up(self, occ: ValidOccurrence, issue_type: IssueType) -> bool:
        """Whether the type's creation quota leaves no room for one more issue."""
        quota = issue_type.creation_quota
        if quota is None:
            return False
        created = self.created_in_window(occ.project_id, occ.type_id, quota.window_seconds)
        return quota_exceeded(created, quota.limit)

    def queue(
        self,
        occ: ValidOccurrence,
        issue: Issue | None,
        issue_type: IssueType,
        *,
        pending_hash: str | None = None,
    ) -> None:
        """Queue the occurrence row (and its event) for the inserts."""
        self.rows[(occ.project_id, occ.id)] = Row(
            occ, issue, pending_hash, priority_of(occ, issue_type)
        )
        data = occ.event
        if data is not None:
            key = (occ.project_id, occ.event_id)
            if key not in self.events:
                if "received" not in data:
                    data = {**data, "received": self.now.isoformat()}  # a copy: the payload stays
                self.events[key] = data

    def add_created(self, issue: Issue) -> None:
        """Keep an issue opened by this batch (written with the others, counted in quotas)."""
        self.created.append(issue)
        self._created_by_type[(issue.project_id, issue.type_id)] += 1


def load_existing(batch: Batch, occurrences: Iterable[ValidOccurrence]) -> None:
    """Stored occurrences among the batch's ids (one indexed query per project)."""
    by_project: dict[int, list[str]] = defaultdict(list)
    for occ in occurrences:
        by_project[occ.project_id].append(occ.id)
    sql = batch.sql
    for project_id, ids in by_project.items():
        for occ_id, group_id in st.existing_occurrences(batch.cur, sql, project_id, ids):
            batch.existing[(project_id, occ_id)] = group_id


def load_known(batch: Batch, hashes_by_project: dict[int, set[str]]) -> None:
    """The issues reached by the batch's hashes, as counting states (one per issue)."""
    # Projects in order, issues by id within each (the query, on PostgreSQL): the order the
    # counter fold locks in too (journal.py), so the two never wait on each other in a cycle.
    for project_id, hashes in sorted(hashes_by_project.items()):
        rows = st.known_issues(batch.cur, batch.sql, project_id, sorted(hashes), batch.times)
        for row in rows:
            issue = batch.touched.get(row.ref)
            if issue is None:
                issue = batch.touched[row.ref] = row
            batch.known[(project_id, row.hash)] = issue


def load_events(batch: Batch, referencing: list[ValidOccurrence]) -> None:
    """Which events referenced by id (occurrences without an event body) are stored."""
    by_project: dict[int, set[str]] = defaultdict(set)
    for occ in referencing:
        by_project[occ.project_id].add(occ.event_id)
    for project_id, event_ids in by_project.items():
        ordered = sorted(event_ids)
        for start in range(0, len(ordered), 500):
            rows = batch.session.scalars(
                select(Event.event_id).where(
                    Event.project_id == project_id,
                    Event.event_id.in_(ordered[start : start + 500]),
                )
            )
            for event_id in rows:
                batch.events[(project_id, event_id)] = {}


def load_webhook_projects(batch: Batch) -> None:
    """The batch's projects that have a webhook (only their issues may notify)."""
    ids = sorted(batch.projects)
    rows = driver.fetch(batch.cur, batch.sql.webhook_projects, (batch.sql.ids_param(ids),))
    batch.webhook_projects = {int(p) for (p,) in rows}
