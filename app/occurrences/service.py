"""The ingest use case: many validated occurrences grouped into issues in one transaction.

Batch-first (ADR 0003): a single ``POST /occurrences`` is a batch of one; ``/occurrences/batch``,
``/ingest`` and the Kafka consumer hand over many. Every query is made once per batch (projects,
known hashes, existing occurrences, issue rows) and the writes are flushed together; the answer is
built only after the commit.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.context import AppContext
from app.issue_types.registry import IssueType
from app.issue_types.service import refresh_if_stale
from app.issues.activity import add_activity
from app.issues.status import GroupStatus, GroupSubStatus
from app.lifecycle.hooks import on_ignored_occurrences
from app.metrics import OCCURRENCES
from app.models import (
    Event,
    Group,
    GroupHash,
    HourlyCount,
    Occurrence,
    PendingWindow,
    Project,
)
from app.notifications.outbox import enqueue
from app.occurrences import store
from app.occurrences.grouping import decide, fingerprint_hashes
from app.occurrences.noise import Window, admit, quota_exceeded
from app.occurrences.validation import (
    Limits,
    PayloadError,
    ValidOccurrence,
    truncate_culprit,
    validate_occurrence,
)
from app.rollout.rules import FlagKind
from app.rollout.service import is_enabled

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 5
LOCK_BUCKETS = 1 << 16


@dataclass(frozen=True)
class IngestResult:
    """The answer to one message: HTTP status, body, and the message's payload type."""

    status_code: int
    body: dict[str, Any]
    payload_type: str = "occurrence"


def error_result(status: int, code: str, message: str, details: Any = None) -> IngestResult:
    """A rejected message."""
    return IngestResult(status, {"error": {"code": code, "message": message, "details": details}})


def _accepted(
    occ: ValidOccurrence,
    outcome: str,
    *,
    issue_id: int | None = None,
    reason: str | None = None,
    noise: dict[str, Any] | None = None,
) -> IngestResult:
    return IngestResult(
        202,
        {
            "occurrence_id": occ.id,
            "project_id": occ.project_id,
            "outcome": outcome,
            "reason": reason,
            "issue_id": issue_id,
            "noise": noise,
            "ignored_fields": list(occ.ignored_fields),
        },
    )


def epoch_hour(moment: datetime) -> int:
    """Hours since the Unix epoch of a UTC moment."""
    return int(moment.timestamp() // 3600)


def _lock_key(project_id: int, value: str) -> int:
    digest = hashlib.blake2b(f"{project_id}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % LOCK_BUCKETS


def _retrying(ctx: AppContext, fn: Callable[[], T]) -> T:
    """Run a write use case again when a concurrent writer made it lose a race.

    A unique-key race (two processes creating the same issue, the same occurrence id at the same
    instant) or a PostgreSQL deadlock aborts the transaction; the retry sees the winner's rows.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return fn()
        except IntegrityError:
            if attempt == MAX_ATTEMPTS:
                raise
            log.info("ingest race lost (attempt %d), retrying", attempt)
        except OperationalError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in ("40P01", "40001") or attempt == MAX_ATTEMPTS:
                raise
            log.info("ingest deadlock (attempt %d), retrying", attempt)
    raise AssertionError("unreachable")


def limits_of(ctx: AppContext) -> Limits:
    """The payload limits in force."""
    s = ctx.settings
    return Limits(
        max_fingerprint_elements=s.max_fingerprint_elements,
        max_fingerprint_length=s.max_fingerprint_length,
        max_title_length=s.max_title_length,
        max_depth=s.max_nesting_depth,
    )


def ingest_occurrences(
    ctx: AppContext, raws: Sequence[Any], *, principal: Principal
) -> list[IngestResult]:
    """Validate and ingest many occurrences; one result per item, in order."""
    return ingest_requests(ctx, [(list(raws), principal)])[0]


def ingest_requests(
    ctx: AppContext, requests: Sequence[tuple[Sequence[Any], Principal]]
) -> list[list[IngestResult]]:
    """Ingest the items of several requests in one transaction (group commit).

    Each request keeps its own caller, so tenancy is checked per item; the answers come back
    per request, in order.
    """
    limits = limits_of(ctx)
    flat: list[tuple[Any, Principal]] = [(raw, p) for raws, p in requests for raw in raws]
    results: list[IngestResult | None] = [None] * len(flat)
    valid: list[tuple[int, ValidOccurrence, Principal]] = []
    for i, (raw, principal) in enumerate(flat):
        try:
            valid.append((i, validate_occurrence(raw, limits), principal))
        except PayloadError as exc:
            results[i] = error_result(422, exc.code, exc.message, exc.details())
    if valid:
        processed = _retrying(ctx, lambda: _ingest_valid(ctx, valid))
        for i, result in processed.items():
            results[i] = result
    out = [r for r in results if r is not None]
    assert len(out) == len(flat)
    tally: dict[tuple[str, str], int] = defaultdict(int)
    for (raw, _), r in zip(flat, out, strict=True):
        if r.status_code >= 400:
            tally[("rejected", "-")] += 1
        else:
            # Accepted items carry a registered type, so the label set stays bounded.
            tally[(r.body["outcome"], str(raw.get("type")))] += 1
    for (outcome, type_label), n in tally.items():
        OCCURRENCES.labels(outcome=outcome, type=type_label).inc(n)
    answers: list[list[IngestResult]] = []
    position = 0
    for raws, _ in requests:
        answers.append(out[position : position + len(raws)])
        position += len(raws)
    return answers


@dataclass(slots=True)
class _Plain:
    """An unresolved issue that the batch's occurrences only count into (no ORM object).

    Plain joining changes counters, times, the newest occurrence's texts and the priority;
    it never changes the status, so an issue stays plain for the whole batch and its change is
    written by one set-based UPDATE (store.write_batch).
    """

    row: store.KnownGroup
    # Times in the database's form (store.DbTimes): compared without parsing.
    first_seen: Any
    last_seen: Any
    latest_detection_time: Any
    added: int = 0
    title: str | None = None
    subtitle: str | None = None
    culprit: str | None = None
    level: str | None = None
    latest_occurrence_id: str | None = None
    priority: int | None = None

    @classmethod
    def of(cls, row: store.KnownGroup) -> _Plain:
        """The issue as loaded, nothing counted yet."""
        return cls(row, row.first_seen, row.last_seen, row.latest_detection_time)

    def join(self, occ: ValidOccurrence, moment: Any) -> None:
        """Count one occurrence in (the same rules as _count_into and _join).

        ``moment`` is the occurrence's detection time in the database's form.
        """
        self.added += 1
        if moment > self.last_seen:
            self.last_seen = moment
        if moment < self.first_seen:
            self.first_seen = moment
        if moment >= self.latest_detection_time:
            self.title = occ.issue_title
            self.subtitle = occ.subtitle
            self.culprit = truncate_culprit(occ.culprit)
            self.level = occ.level
            self.latest_occurrence_id = occ.id
            self.latest_detection_time = moment
        if occ.priority is not None and not self.row.priority_locked:
            self.priority = occ.priority

    def update(self) -> store.GroupUpdate:
        """The set-based change of this issue (unchanged columns left out: fewer index writes)."""
        row = self.row
        newest = self.latest_occurrence_id is not None
        return store.GroupUpdate(
            id=row.id,
            added=self.added,
            first_seen=self.first_seen if self.first_seen != row.first_seen else None,
            last_seen=self.last_seen if self.last_seen != row.last_seen else None,
            latest_detection_time=self.latest_detection_time if newest else None,
            title=self.title,
            subtitle=self.subtitle,
            culprit=self.culprit,
            level=self.level,
            latest_occurrence_id=self.latest_occurrence_id,
            priority=self.priority,
        )


@dataclass
class _Batch:
    """State of one ingest transaction."""

    session: Session
    ctx: AppContext
    now: datetime
    projects: dict[int, store.ProjectInfo]
    sql: store.HotStatements
    times: store.DbTimes
    cur: Any  # the DBAPI cursor of the session's connection (store.cursor)
    received: str  # batch.now in ISO form, the "received" of stored events
    known: dict[tuple[int, str], int] = field(default_factory=dict)
    groups: dict[int, Group] = field(default_factory=dict)
    plain: dict[int, _Plain] = field(default_factory=dict)
    new_rows: list[dict[str, Any]] = field(default_factory=list)
    stored_ids: dict[tuple[int, str], int | None] = field(default_factory=dict)
    hour_increments: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    ignored_touched: dict[int, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    events: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    created_in_batch: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))


def _ingest_valid(
    ctx: AppContext, valid: list[tuple[int, ValidOccurrence, Principal]]
) -> dict[int, IngestResult]:
    """One transaction: everything an ingest batch changes, committed before answering."""
    results: dict[int, IngestResult] = {}
    with ctx.db.write() as session:
        now = ctx.now()
        refresh_if_stale(ctx, session)
        sql = store.statements(session)
        project_ids = sorted({v.project_id for _, v, _ in valid})
        cur = store.cursor(session)
        projects = {p.id: p for p in store.projects(cur, sql, project_ids)}
        batch = _Batch(
            session=session,
            ctx=ctx,
            now=now,
            projects=projects,
            sql=sql,
            times=sql.times(),
            cur=cur,
            received=now.isoformat(),
        )

        # Checks that need the database but change nothing.
        candidates: list[tuple[int, ValidOccurrence, IssueType, list[str]]] = []
        for i, occ, principal in valid:
            project = projects.get(occ.project_id)
            if project is None:
                results[i] = error_result(
                    404, "project_not_found", f"project {occ.project_id} not found", None
                )
                continue
            if not principal.may_access(project.organization_id, project.id):
                results[i] = error_result(
                    403, "forbidden", f"this key may not use project {occ.project_id}", None
                )
                continue
            issue_type = ctx.registry.get(occ.type_id)
            if issue_type is None:
                results[i] = error_result(
                    422,
                    "unknown_issue_type",
                    f"issue type {occ.type_id} is not registered",
                    {"field": "type"},
                )
                continue
            candidates.append((i, occ, issue_type, fingerprint_hashes(occ.fingerprint)))
        if not candidates:
            session.rollback()
            return results

        if session.get_bind().dialect.name == "postgresql":
            # Serialize writers touching the same fingerprint or occurrence id; taken in one
            # sorted statement so two batches never wait on each other in a cycle.
            # Only the primary hash: a retry of the same payload shares it, and any other race
            # (same id, other fingerprint) ends in a unique-key error that _retrying replays.
            keys = sorted(
                {_lock_key(occ.project_id, hashes[0]) for _, occ, _, hashes in candidates}
            )
            session.execute(
                text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
                {"keys": keys},
            )

        existing = _existing_occurrences(batch, [(o.project_id, o.id) for _, o, _, _ in candidates])
        _load_known(batch, candidates)
        _load_events(batch, [o for _, o, _, _ in candidates if o.event is None])

        for i, occ, issue_type, hashes in candidates:
            key = (occ.project_id, occ.id)
            if key in existing:
                results[i] = _accepted(occ, "duplicate", issue_id=existing[key])
                continue
            if key in batch.stored_ids:
                results[i] = _accepted(occ, "duplicate", issue_id=batch.stored_ids[key])
                continue
            project = projects[occ.project_id]
            if not is_enabled(
                ctx,
                session,
                issue_type,
                FlagKind.INGEST,
                project.organization_id,
                project.early_adopter,
            ):
                results[i] = _accepted(occ, "dropped", reason="ingest_disabled")
                continue
            if occ.event is None and (occ.project_id, occ.event_id) not in batch.events:
                results[i] = error_result(
                    422,
                    "event_not_found",
                    f"event {occ.event_id} was not stored for project {occ.project_id}",
                    {"field": "event_id"},
                )
                continue
            results[i] = _process(batch, occ, issue_type, hashes, project)

        _flush_writes(batch)
        session.commit()
    return results


def _existing_occurrences(
    batch: _Batch, keys: list[tuple[int, str]]
) -> dict[tuple[int, str], int | None]:
    """Stored occurrences among ``keys`` (one indexed query per project)."""
    by_project: dict[int, list[str]] = defaultdict(list)
    for project_id, occ_id in keys:
        by_project[project_id].append(occ_id)
    found: dict[tuple[int, str], int | None] = {}
    for project_id, occ_ids in by_project.items():
        for occ_id, group_id in store.existing_occurrences(
            batch.cur, batch.sql, project_id, occ_ids
        ):
            found[(project_id, occ_id)] = group_id
    return found


def _load_known(
    batch: _Batch, candidates: list[tuple[int, ValidOccurrence, IssueType, list[str]]]
) -> None:
    """Known hashes of the batch's projects, and their issues (locked in id order).

    Unresolved issues that cannot regress are joined without the ORM (``_Plain``); the others
    are loaded as ORM objects when an occurrence reaches them (``_orm_group``).
    """
    by_project: dict[int, set[str]] = defaultdict(set)
    for _, occ, _, hashes in candidates:
        by_project[occ.project_id].update(hashes)
    for project_id, project_hashes in by_project.items():
        project = batch.projects[project_id]
        for row in store.known_groups(batch.cur, batch.sql, project_id, sorted(project_hashes)):
            batch.known[(project_id, row.hash)] = row.id
            if row.id not in batch.plain and _is_plain(batch, row, project):
                batch.plain[row.id] = _Plain.of(row)


def _is_plain(batch: _Batch, row: store.KnownGroup, project: store.ProjectInfo) -> bool:
    if row.status != GroupStatus.UNRESOLVED:
        return False
    if project.resolve_age_hours <= 0:
        return True
    issue_type = batch.ctx.registry.get(row.type_id)
    if issue_type is None or not issue_type.enable_auto_resolve:
        return True
    # Old enough to count as resolved: the next occurrence regresses it (ORM path).
    return bool(
        row.last_seen >= batch.times(batch.now - timedelta(hours=project.resolve_age_hours))
    )


def _orm_group(batch: _Batch, group_id: int) -> Group:
    """The ORM object of a non-plain issue (its row is already locked on PostgreSQL)."""
    group = batch.groups.get(group_id)
    if group is None:
        group = batch.session.get(Group, group_id)
        assert group is not None
        batch.groups[group_id] = group
    return group


def _load_events(batch: _Batch, referencing: list[ValidOccurrence]) -> None:
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


def _process(
    batch: _Batch,
    occ: ValidOccurrence,
    issue_type: IssueType,
    hashes: list[str],
    project: store.ProjectInfo,
) -> IngestResult:
    """Group one occurrence: join, regress, wait below the noise threshold, or open an issue."""
    known = {
        h: batch.known[(occ.project_id, h)] for h in hashes if (occ.project_id, h) in batch.known
    }
    decision = decide(hashes, known)
    if decision.group_id is not None:
        plain = batch.plain.get(decision.group_id)
        if plain is not None:  # the common case: counted without an ORM object
            if plain.row.type_id != occ.type_id:
                return _accepted(occ, "dropped", reason="type_mismatch", issue_id=None)
            plain.join(occ, batch.times(occ.detection_time))
            batch.hour_increments[(decision.group_id, epoch_hour(occ.detection_time))] += 1
            outcome = "grouped"
        else:
            group = _orm_group(batch, decision.group_id)
            if group.type_id != occ.type_id:
                return _accepted(occ, "dropped", reason="type_mismatch", issue_id=None)
            outcome = _join(batch, group, [occ], project)
        if decision.link_hashes:
            _link(batch, occ.project_id, decision.group_id, decision.link_hashes)
        _store(batch, occ, decision.group_id, issue_type)
        return _accepted(occ, outcome, issue_id=decision.group_id)

    primary = decision.primary_hash
    pending: list[Occurrence] = []
    noise_answer: dict[str, Any] | None = None
    if issue_type.noise_config is not None and issue_type.noise_config.ignore_limit > 1:
        window_row = batch.session.get(
            PendingWindow, (occ.project_id, primary), with_for_update=True
        )
        if window_row is not None and window_row.type_id != occ.type_id:
            return _accepted(occ, "dropped", reason="type_mismatch")
        window = (
            Window(window_row.count, window_row.window_started_at, window_row.window_ends_at)
            if window_row is not None
            else None
        )
        cfg = issue_type.noise_config
        admission = admit(
            window,
            occ.detection_time,
            ignore_limit=cfg.ignore_limit,
            expiry=timedelta(seconds=cfg.expiry_seconds),
        )
        if not admission.reached:
            if admission.restarted:
                _discard_pending(batch, occ.project_id, primary)
            _save_window(batch, window_row, occ, primary, admission.window, cfg.ignore_limit)
            _store(batch, occ, None, issue_type, pending_hash=primary)
            return _accepted(
                occ,
                "pending",
                noise={
                    "count": admission.window.count,
                    "threshold": cfg.ignore_limit,
                    "window_ends_at": admission.window.ends_at,
                },
            )
        if _quota_used_up(batch, occ, issue_type):
            return _accepted(occ, "rate_limited", reason="creation_quota")
        if admission.restarted:
            _discard_pending(batch, occ.project_id, primary)
        else:
            pending = _pending_of(batch, occ.project_id, primary)
        if window_row is not None:
            batch.session.delete(window_row)
        noise_answer = None
    elif _quota_used_up(batch, occ, issue_type):
        return _accepted(occ, "rate_limited", reason="creation_quota")

    group = _create(batch, occ, issue_type, project, primary, decision.link_hashes)
    if pending:
        _adopt_pending(batch, group, pending)
    _store(batch, occ, group.id, issue_type)
    return _accepted(occ, "created", issue_id=group.id, noise=noise_answer)


def _quota_used_up(batch: _Batch, occ: ValidOccurrence, issue_type: IssueType) -> bool:
    quota = issue_type.creation_quota
    if quota is None:
        return False
    since = batch.now - timedelta(seconds=quota.window_seconds)
    # Issues created earlier in this batch are already flushed, so the count includes them.
    batch.session.flush()
    count = batch.session.scalar(
        select(func.count())
        .select_from(Group)
        .where(
            Group.project_id == occ.project_id,
            Group.type_id == occ.type_id,
            Group.created_at > since,
        )
    )
    return quota_exceeded(int(count or 0), quota.limit)


def _save_window(
    batch: _Batch,
    row: PendingWindow | None,
    occ: ValidOccurrence,
    primary: str,
    window: Window,
    threshold: int,
) -> None:
    if row is None:
        row = PendingWindow(project_id=occ.project_id, hash=primary, type_id=occ.type_id)
        batch.session.add(row)
    row.fingerprint = occ.fingerprint[0]
    row.count = window.count
    row.threshold = threshold
    row.window_started_at = window.started_at
    row.window_ends_at = window.ends_at
    batch.session.flush()


def _discard_pending(batch: _Batch, project_id: int, primary: str) -> None:
    """Occurrences of an expired window stay stored (ids stay duplicates) but no longer count."""
    batch.session.flush()
    batch.session.execute(
        update(Occurrence)
        .where(Occurrence.project_id == project_id, Occurrence.pending_hash == primary)
        .values(pending_hash=None)
    )
    for row in batch.new_rows:
        if row["project_id"] == project_id and row["pending_hash"] == primary:
            row["pending_hash"] = None


def _pending_of(batch: _Batch, project_id: int, primary: str) -> list[Occurrence]:
    """The window's pending occurrences (stored earlier, or earlier in this batch)."""
    batch.session.flush()
    rows = list(
        batch.session.scalars(
            select(Occurrence).where(
                Occurrence.project_id == project_id, Occurrence.pending_hash == primary
            )
        )
    )
    for row in batch.new_rows:
        if row["project_id"] == project_id and row["pending_hash"] == primary:
            rows.append(Occurrence(**row))
    return rows


def _adopt_pending(batch: _Batch, group: Group, pending: list[Occurrence]) -> None:
    """Pending occurrences of the window join the issue that their threshold created."""
    batch.session.execute(
        update(Occurrence)
        .where(Occurrence.project_id == group.project_id, Occurrence.pending_hash == group.hash)
        .values(group_id=group.id, pending_hash=None)
    )
    for row in batch.new_rows:
        if row["project_id"] == group.project_id and row["pending_hash"] == group.hash:
            row["group_id"] = group.id
            row["pending_hash"] = None
            batch.stored_ids[(row["project_id"], row["id"])] = group.id
    for occ in pending:
        _count_into(batch, group, occ)


def _create(
    batch: _Batch,
    occ: ValidOccurrence,
    issue_type: IssueType,
    project: store.ProjectInfo,
    primary: str,
    link_hashes: Sequence[str],
) -> Group:
    session = batch.session
    short_id = (
        session.execute(
            update(Project)
            .where(Project.id == project.id)
            .values(next_short_id=Project.next_short_id + 1)
            .returning(Project.next_short_id)
        ).scalar_one()
        - 1
    )
    priority = occ.priority if occ.priority is not None else issue_type.default_priority
    notify = is_enabled(
        batch.ctx,
        session,
        issue_type,
        FlagKind.POST_PROCESS,
        project.organization_id,
        project.early_adopter,
    )
    group = Group(
        project_id=occ.project_id,
        type_id=occ.type_id,
        hash=primary,
        short_id=short_id,
        title=occ.issue_title,
        subtitle=occ.subtitle,
        culprit=truncate_culprit(occ.culprit),
        level=occ.level,
        status=GroupStatus.UNRESOLVED,
        substatus=GroupSubStatus.NEW,
        substatus_changed_at=batch.now,
        priority=priority,
        initial_priority=priority,
        priority_locked=False,
        first_seen=occ.detection_time,
        last_seen=occ.detection_time,
        times_seen=1,
        latest_occurrence_id=occ.id,
        latest_detection_time=occ.detection_time,
        assignee=occ.assignee,
        notify_created=notify,
        version=1,
        created_at=batch.now,
        updated_at=batch.now,
    )
    session.add(group)
    session.flush()
    session.add(GroupHash(project_id=occ.project_id, hash=primary, group_id=group.id))
    batch.known[(occ.project_id, primary)] = group.id
    batch.groups[group.id] = group
    session.flush()
    if link_hashes:
        _link(batch, occ.project_id, group.id, link_hashes)
    batch.hour_increments[(group.id, epoch_hour(occ.detection_time))] += 1
    enqueue(session, batch.ctx, group, "issue.created", now=batch.now)
    return group


def _link(batch: _Batch, project_id: int, group_id: int, hashes: Sequence[str]) -> None:
    """Link the free hashes of a fingerprint to the issue it went to (SPEC §6).

    Only fingerprints with several elements get here. When a concurrent writer linked one of
    them first, the insert fails and ``_retrying`` runs the batch again: the hash is then
    known, stays with that writer's issue, and groups this batch's later items as it should.
    """
    store.link_hashes(batch.cur, batch.sql, project_id, group_id, hashes)
    for h in hashes:
        batch.known[(project_id, h)] = group_id


def _apply_times(group: Group, detection_time: datetime) -> None:
    if detection_time > group.last_seen:
        group.last_seen = detection_time
    if detection_time < group.first_seen:
        group.first_seen = detection_time


class _Counted(Protocol):
    """What counting needs of an occurrence: a validated one, or a stored pending row."""

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


def _count_into(batch: _Batch, group: Group, occ: _Counted) -> None:
    """Count one occurrence into an issue: times, hourly count, and the newest one's texts."""
    group.times_seen += 1
    _apply_times(group, occ.detection_time)
    if occ.detection_time >= group.latest_detection_time:
        group.title = occ.issue_title
        group.subtitle = occ.subtitle
        group.culprit = truncate_culprit(occ.culprit)
        group.level = occ.level
        group.latest_occurrence_id = occ.id
        group.latest_detection_time = occ.detection_time
    batch.hour_increments[(group.id, epoch_hour(occ.detection_time))] += 1


def _counts_as_resolved(batch: _Batch, group: Group, project: store.ProjectInfo) -> bool:
    if group.status == GroupStatus.RESOLVED:
        return True
    if group.status != GroupStatus.UNRESOLVED or project.resolve_age_hours <= 0:
        return False
    issue_type = batch.ctx.registry.get(group.type_id)
    if issue_type is None or not issue_type.enable_auto_resolve:
        return False
    return group.last_seen < batch.now - timedelta(hours=project.resolve_age_hours)


def _join(
    batch: _Batch, group: Group, occs: list[ValidOccurrence], project: store.ProjectInfo
) -> str:
    """Count occurrences into an existing issue; returns ``grouped`` or ``regressed``."""
    outcome = "grouped"
    for occ in occs:
        if _counts_as_resolved(batch, group, project):
            group.status = GroupStatus.UNRESOLVED
            group.substatus = GroupSubStatus.REGRESSED
            group.substatus_changed_at = batch.now
            group.resolved_at = None
            group.ignore_until = None
            add_activity(
                batch.session,
                group,
                "set_regression",
                now=batch.now,
                data={"occurrence_id": occ.id},
            )
            batch.session.flush()
            enqueue(batch.session, batch.ctx, group, "issue.regressed", now=batch.now)
            outcome = "regressed"
        _count_into(batch, group, occ)
        if occ.priority is not None and not group.priority_locked:
            group.priority = occ.priority
        group.updated_at = batch.now
        group.version += 1  # the ETag follows every change of the answer, counts included
        if group.status == GroupStatus.IGNORED:
            batch.ignored_touched[group.id].append(occ.detection_time)
    return outcome


def _store(
    batch: _Batch,
    occ: ValidOccurrence,
    group_id: int | None,
    issue_type: IssueType,
    *,
    pending_hash: str | None = None,
) -> None:
    """Queue the occurrence row (and its event) for the batch insert."""
    batch.new_rows.append(
        {
            "project_id": occ.project_id,
            "id": occ.id,
            "group_id": group_id,
            "pending_hash": pending_hash,
            "type_id": occ.type_id,
            "event_id": occ.event_id,
            "fingerprint": list(occ.fingerprint),
            "issue_title": occ.issue_title,
            "subtitle": occ.subtitle,
            "culprit": occ.culprit,
            "resource_id": occ.resource_id,
            "evidence_data": occ.evidence_data,
            "evidence_display": occ.evidence_display,
            "detection_time": occ.detection_time,
            "level": occ.level,
            "priority": occ.priority if occ.priority is not None else issue_type.default_priority,
            "assignee": occ.assignee,
            "received_at": batch.now,
        }
    )
    batch.stored_ids[(occ.project_id, occ.id)] = group_id
    if occ.event is not None and (occ.project_id, occ.event_id) not in batch.events:
        data = occ.event
        if "received" not in data:
            data = {**data, "received": batch.received}  # a copy: the payload stays as sent
        batch.events[(occ.project_id, occ.event_id)] = data


def _flush_writes(batch: _Batch) -> None:
    """Write the batch's rows with set-based statements, then apply ignored-issue rules."""
    session = batch.session
    session.flush()  # issues created or changed through the ORM first (rows reference them)
    store.write_batch(
        batch.cur,
        batch.sql,
        now=batch.now,
        events=[(p, e, data) for (p, e), data in batch.events.items() if data],
        occurrences=batch.new_rows,
        hourly=[(g, h, n) for (g, h), n in sorted(batch.hour_increments.items())],
        groups=[plain.update() for _, plain in sorted(batch.plain.items()) if plain.added],
        times=batch.times,
    )
    session.flush()
    for group_id, times in batch.ignored_touched.items():
        group = batch.groups[group_id]
        if group.status != GroupStatus.IGNORED:
            continue
        hours = sorted({epoch_hour(t) for t in times})
        counts = dict(
            session.execute(
                select(HourlyCount.hour, HourlyCount.count).where(
                    HourlyCount.group_id == group_id, HourlyCount.hour.in_(hours)
                )
            ).all()
        )
        on_ignored_occurrences(
            session,
            batch.ctx,
            group,
            hour_counts={h: int(counts.get(h, 0)) for h in hours},
            detection_times=times,
            now=batch.now,
        )
    session.flush()
