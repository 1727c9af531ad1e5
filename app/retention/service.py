"""One retention cleanup pass: deletes what expired, batch by batch (see ``rules``).

Every batch is its own short transaction of at most ``retention_batch_size`` rows, shrunk when
one takes longer than ``retention_batch_seconds``, followed by a pause of
``retention_pause_seconds``, and while this process's ingest writer is busy at least three times
as long as the batch took: ingest waits at most one batch for the database, and gets it (and
the CPU) most of the time. Every step starts
small again (its rows cost differently), and a step whose candidates bring many rows along
(an old issue's hourly counts) stops its batch at its row budget. Each step finds its rows
through an index range (docs/adr/0010-retention.md), so a pass never reads a whole table.

Several processes: on PostgreSQL a pass runs only in the process holding a session-level
advisory lock (the others skip theirs), and every batch selects its rows ``FOR UPDATE SKIP
LOCKED``: a row that an ingest transaction holds (an issue it joins, a window it counts into)
is left for the next pass instead of waited for, so cleanup and ingest never wait on each other
in a cycle. On SQLite, writes are serialized by the database anyway.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    delete,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import Session

from app.context import AppContext
from app.lifecycle.forecast import hour_start
from app.metrics import RETENTION_BATCH_SECONDS, RETENTION_DELETED, RETENTION_PASS_SECONDS
from app.models import (
    Activity,
    Event,
    Forecast,
    Group,
    GroupHash,
    HourlyCount,
    Occurrence,
    PendingWindow,
    Project,
    StatusChangeRecord,
    Webhook,
    WebhookDelivery,
)
from app.occurrences.noise import window_closed
from app.retention.rules import TABLES, BatchSizer, cutoffs

log = logging.getLogger(__name__)

# Session-level advisory lock key of the pass on PostgreSQL ("retention" in ASCII, as a bigint).
PASS_LOCK_KEY = 0x726574656E74696F
# An expired issue brings its hashes, activity and counts along: fewer issues than rows a batch.
GROUPS_PER_ROW = 20
# Rows of the first batch of a step (it grows by half per quick batch up to the batch size).
FIRST_BATCH = 200
# While this process's ingest writer is busy, the pause after a transaction is at least this
# many times as long as the transaction: the pass holds the database (and, in `serve`, the
# CPU and the GIL it shares with the event loop) at most a quarter of the time.
BUSY_YIELD = 3.0

S = TypeVar("S", bound="Select[*tuple[Any, ...]]")


@dataclass
class StepStats:
    """Transactions of one step of a pass: how many, and the longest."""

    batches: int = 0
    slowest_seconds: float = 0.0

    def add(self, elapsed: float) -> None:
        self.batches += 1
        self.slowest_seconds = max(self.slowest_seconds, elapsed)


@dataclass
class PassResult:
    """What one pass deleted (or, in a dry run, would delete) per table."""

    deleted: dict[str, int]
    dry_run: bool
    seconds: float = 0.0
    # True when another process's pass was running (PostgreSQL): this one did nothing.
    skipped: bool = False
    # SQLite pages given back to the filesystem after the pass.
    vacuumed_pages: int = 0
    batches: int = 0
    # The longest a single transaction of the pass (a batch or a vacuum step) held the database.
    slowest_batch_seconds: float = 0.0
    # Per step (``occurrences``, ``hourly_counts``, ``vacuum``, ...): its batches and slowest.
    steps: dict[str, StepStats] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The result as a small JSON-ready dict (the job summary)."""
        return {
            "dry_run": self.dry_run,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "batches": self.batches,
            "slowest_batch_seconds": round(self.slowest_batch_seconds, 3),
            "vacuumed_pages": self.vacuumed_pages,
            "deleted": dict(self.deleted),
            "steps": {
                name: {"batches": st.batches, "slowest_seconds": round(st.slowest_seconds, 3)}
                for name, st in self.steps.items()
            },
        }


@dataclass
class _Pass:
    ctx: AppContext
    now: datetime
    deleted: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    slowest: float = 0.0
    steps: dict[str, StepStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.ctx.settings
        self.postgres = not self.ctx.db.sqlite
        self.sizer = BatchSizer(
            minimum=10, maximum=s.retention_batch_size, target_seconds=s.retention_batch_seconds
        )
        # Start small and grow while batches stay quick: the first ones read cold pages.
        self.size = min(s.retention_batch_size, FIRST_BATCH)
        self.pause = s.retention_pause_seconds
        self.ingest_seen = self.ctx.db.ingest_transactions

    # -- batching ------------------------------------------------------------------------

    def _locked(self, stmt: S, *of: Any) -> S:
        """``stmt`` taking its rows FOR UPDATE SKIP LOCKED on PostgreSQL (see module docs)."""
        if not self.postgres:
            return stmt
        return stmt.with_for_update(skip_locked=True, of=list(of) or None)

    def _batches(self, name: str, step: Callable[[Session, int], int], *, per_row: int = 1) -> None:
        """Run ``step(session, limit)`` in short transactions until it finds fewer than ``limit``.

        ``step`` returns how many candidate rows it found; ``per_row`` divides the batch size
        for steps whose rows bring others along (an issue's hashes, activity, counts). ``name``
        is the step's in the per-step statistics and the batch-duration metric.
        """
        stats = self.steps.setdefault(name, StepStats())
        # Each step starts small: its rows cost differently from the previous step's.
        self.size = min(self.sizer.maximum, FIRST_BATCH)
        while True:
            limit = max(1, self.size // per_row)
            with _turn(self.ctx):
                started = time.monotonic()
                with self.ctx.db.write() as session:
                    found = step(session, limit)
                    session.commit()
                elapsed = time.monotonic() - started
            self.batches += 1
            self.slowest = max(self.slowest, elapsed)
            stats.add(elapsed)
            RETENTION_BATCH_SECONDS.labels(step=name).observe(elapsed)
            self.size = self.sizer.next(self.size, elapsed * per_row * limit / self.size)
            if found < limit:
                return
            self.ingest_seen = _yield(self.ctx, self.pause, elapsed, self.ingest_seen)

    def _count(self, table: str, result: Any) -> None:
        rows = int(result.rowcount or 0)
        if rows > 0:
            self.deleted[table] += rows

    # -- shared deletes ------------------------------------------------------------------

    def _drop_events(self, session: Session, project_id: int, event_ids: Iterable[str]) -> None:
        """Delete the events among ``event_ids`` that no stored occurrence refers to any more."""
        ids = sorted(set(event_ids))
        if not ids:
            return
        used = (
            select(Occurrence.event_id)
            .where(Occurrence.project_id == project_id, Occurrence.event_id == Event.event_id)
            .exists()
        )
        stmt = delete(Event).where(Event.project_id == project_id, Event.event_id.in_(ids), ~used)
        self._count("events", session.execute(stmt))

    def _drop_occurrences(self, session: Session, where: ColumnElement[bool]) -> None:
        """Delete the occurrences matching ``where`` (few: one window's, or expired issues'),
        and then the events only they used."""
        rows = session.execute(
            delete(Occurrence).where(where).returning(Occurrence.project_id, Occurrence.event_id)
        ).all()
        self.deleted["occurrences"] += len(rows)
        by_project: dict[int, set[str]] = {}
        for project_id, event_id in rows:
            by_project.setdefault(project_id, set()).add(event_id)
        for project_id, event_ids in by_project.items():
            self._drop_events(session, project_id, event_ids)

    # -- the steps -----------------------------------------------------------------------

    def expired_occurrences(self, project_id: int, cutoff: datetime) -> None:
        """Occurrences older than the retention (pending ones wait for their window)."""

        def step(session: Session, limit: int) -> int:
            stmt = (
                select(Occurrence.id, Occurrence.event_id)
                .where(
                    Occurrence.project_id == project_id,
                    Occurrence.detection_time < cutoff,
                    Occurrence.pending_hash.is_(None),
                )
                .order_by(Occurrence.detection_time)
                .limit(limit)
            )
            rows = session.execute(self._locked(stmt)).all()
            if rows:
                result = session.execute(
                    delete(Occurrence).where(
                        Occurrence.project_id == project_id,
                        Occurrence.id.in_([r.id for r in rows]),
                    )
                )
                self._count("occurrences", result)
                self._drop_events(session, project_id, (r.event_id for r in rows))
            return len(rows)

        self._batches("occurrences", step)

    def expired_hourly_counts(self, project_id: int, cutoff_hour: int) -> None:
        """Hourly counts older than the cutoff hour, of the project's issues seen that early.

        Walks the issues first seen before the cutoff in (first_seen, id) order, an index
        range: counts are never older than their issue's first_seen. Expired issues go with
        all their counts in ``expired_groups``. A batch deletes at most its row budget
        (``limit * GROUPS_PER_ROW``): an issue seen all month has hundreds of expired hours,
        and a batch of such issues once deleted tens of thousands of rows in one transaction.
        An issue cut short by the budget is resumed by the next batch.
        """
        before = hour_start(cutoff_hour)
        last: tuple[datetime, int] | None = None

        def step(session: Session, limit: int) -> int:
            nonlocal last
            stmt = select(Group.first_seen, Group.id).where(
                Group.project_id == project_id, Group.first_seen < before
            )
            if last is not None:
                stmt = stmt.where(tuple_(Group.first_seen, Group.id) > tuple_(*last))
            groups = session.execute(stmt.order_by(Group.first_seen, Group.id).limit(limit)).all()
            if not groups:
                return 0
            ids = [g.id for g in groups]
            expired = (HourlyCount.group_id.in_(ids), HourlyCount.hour < cutoff_hour)
            per_group = dict(
                session.execute(
                    select(HourlyCount.group_id, func.count())
                    .where(*expired)
                    .group_by(HourlyCount.group_id)
                ).all()
            )
            budget = limit * GROUPS_PER_ROW
            whole: list[int] = []
            for group in groups:
                rows = int(per_group.get(group.id, 0))
                if rows > budget:
                    break
                budget -= rows
                whole.append(group.id)
                last = (group.first_seen, group.id)
            if whole:
                self._count(
                    "hourly_counts",
                    session.execute(
                        delete(HourlyCount).where(
                            HourlyCount.group_id.in_(whole), HourlyCount.hour < cutoff_hour
                        )
                    ),
                )
            if len(whole) == len(groups):
                return len(groups)
            if budget > 0 and not whole:
                # One issue alone exceeds the budget: its oldest hours, up to the budget.
                gid = groups[0].id
                hours = select(HourlyCount.hour).where(
                    HourlyCount.group_id == gid, HourlyCount.hour < cutoff_hour
                )
                upto = session.scalar(hours.order_by(HourlyCount.hour).offset(budget - 1).limit(1))
                if upto is not None:
                    self._count(
                        "hourly_counts",
                        session.execute(
                            delete(HourlyCount).where(
                                HourlyCount.group_id == gid, HourlyCount.hour <= upto
                            )
                        ),
                    )
            # The budget ran out before the last issues: the next batch resumes there.
            return limit

        self._batches("hourly_counts", step, per_row=GROUPS_PER_ROW)

    def expired_groups(self, project_id: int, cutoff: datetime) -> None:
        """Issues not seen within the retention, with everything that refers to them."""

        def step(session: Session, limit: int) -> int:
            stmt = (
                select(Group.id)
                .where(Group.project_id == project_id, Group.last_seen < cutoff)
                .order_by(Group.last_seen)
                .limit(limit)
            )
            ids = list(session.scalars(self._locked(stmt)))
            if ids:
                # Their occurrences all expired already (none is newer than last_seen), unless
                # a late one arrived since; the others go before the issue.
                self._drop_occurrences(session, Occurrence.group_id.in_(ids))
                for table, model in (
                    ("hourly_counts", HourlyCount),
                    ("forecasts", Forecast),
                    ("activities", Activity),
                    ("group_hashes", GroupHash),
                ):
                    self._count(
                        table,
                        session.execute(delete(model).where(model.group_id.in_(ids))),
                    )
                self._count("groups", session.execute(delete(Group).where(Group.id.in_(ids))))
            return len(ids)

        self._batches("groups", step, per_row=GROUPS_PER_ROW)

    def closed_windows(self) -> None:
        """Noise windows that closed without an issue, with their pending occurrences."""

        def step(session: Session, limit: int) -> int:
            stmt = (
                select(PendingWindow.project_id, PendingWindow.hash)
                .where(window_closed(PendingWindow.window_ends_at, self.now))
                .order_by(PendingWindow.window_ends_at)
                .limit(limit)
            )
            windows = session.execute(self._locked(stmt)).all()
            for project_id, window_hash in windows:
                self._drop_occurrences(
                    session,
                    (Occurrence.project_id == project_id)
                    & (Occurrence.pending_hash == window_hash)
                    & Occurrence.group_id.is_(None),
                )
            if windows:
                keys = [(w.project_id, w.hash) for w in windows]
                result = session.execute(
                    delete(PendingWindow).where(
                        tuple_(PendingWindow.project_id, PendingWindow.hash).in_(keys)
                    )
                )
                self._count("pending_windows", result)
            return len(windows)

        self._batches("pending_windows", step, per_row=GROUPS_PER_ROW)

    def discarded_pending(self) -> None:
        """Pending occurrences of windows that restarted: their window closed without an issue."""

        def step(session: Session, limit: int) -> int:
            stmt = (
                select(Occurrence.project_id, Occurrence.id)
                .where(Occurrence.group_id.is_(None), Occurrence.pending_hash.is_(None))
                .limit(limit)
            )
            rows = session.execute(self._locked(stmt)).all()
            by_project: dict[int, list[str]] = {}
            for project_id, occurrence_id in rows:
                by_project.setdefault(project_id, []).append(occurrence_id)
            for project_id, ids in by_project.items():
                self._drop_occurrences(
                    session,
                    (Occurrence.project_id == project_id)
                    & Occurrence.id.in_(ids)
                    & Occurrence.group_id.is_(None),
                )
            return len(rows)

        self._batches("discarded_pending", step)

    def expired_deliveries(self, webhook_id: int, cutoff: datetime) -> None:
        """Delivery-log entries (delivered or given up) older than the retention."""
        self._expired_log(
            "webhook_deliveries",
            WebhookDelivery,
            cutoff,
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.state != "pending",
        )

    def expired_status_changes(self, project_id: int, cutoff: datetime) -> None:
        """Status-change ids older than the retention: a repeated id is processed anew."""
        self._expired_log(
            "status_change_records",
            StatusChangeRecord,
            cutoff,
            StatusChangeRecord.project_id == project_id,
        )

    def _expired_log(
        self,
        table: str,
        model: type[WebhookDelivery] | type[StatusChangeRecord],
        cutoff: datetime,
        *where: ColumnElement[bool],
    ) -> None:
        """Rows of a log table (``id``, ``created_at``) matching ``where`` older than ``cutoff``."""

        def step(session: Session, limit: int) -> int:
            stmt = (
                select(model.id)
                .where(*where, model.created_at < cutoff)
                .order_by(model.created_at)
                .limit(limit)
            )
            ids = list(session.scalars(self._locked(stmt)))
            if ids:
                result = session.execute(delete(model).where(*where, model.id.in_(ids)))
                self._count(table, result)
            return len(ids)

        self._batches(table, step)

    # -- the whole pass ------------------------------------------------------------------

    def run(self) -> None:
        projects, webhooks = _projects_and_webhooks(self.ctx)
        for project_id, days in projects:
            self.expired_occurrences(project_id, cutoffs(self.now, days).retention)
        # Pending occurrences before issues: a window's hash may be an expired issue's.
        self.closed_windows()
        self.discarded_pending()
        for project_id, days in projects:
            self.expired_hourly_counts(project_id, cutoffs(self.now, days).hourly_hour)
        for project_id, days in projects:
            cutoff = cutoffs(self.now, days).retention
            self.expired_groups(project_id, cutoff)
            self.expired_status_changes(project_id, cutoff)
            for webhook_id in webhooks.get(project_id, ()):
                self.expired_deliveries(webhook_id, cutoff)


def _projects_and_webhooks(
    ctx: AppContext,
) -> tuple[list[tuple[int, int]], dict[int, list[int]]]:
    with ctx.db.read() as session:
        projects = [
            (int(p), int(d))
            for p, d in session.execute(
                select(Project.id, Project.retention_days).order_by(Project.id)
            )
        ]
        webhooks: dict[int, list[int]] = {}
        for webhook_id, project_id in session.execute(
            select(Webhook.id, Webhook.project_id).order_by(Webhook.id)
        ):
            webhooks.setdefault(int(project_id), []).append(int(webhook_id))
    return projects, webhooks


def _turn(ctx: AppContext) -> AbstractContextManager[Any]:
    """Held around each transaction of the pass: on SQLite, this process's write gate.

    The ingest writer of a ``serve`` process takes the same gate around its transactions
    without blocking (it keeps reading requests and retries within half a millisecond), so a
    pass run by ``serve`` itself makes ingest wait for one batch at most, and never in
    SQLite's busy handler, whose sleeps grow to 100 ms while the lock stays taken. On
    PostgreSQL, row locks do the work and nothing is held.
    """
    return ctx.db.checkpoint_gate if ctx.db.sqlite else nullcontext()


@contextmanager
def _pass_lock(ctx: AppContext) -> Iterator[bool]:
    """Whether this process may run the pass: on PostgreSQL, one process at a time."""
    if ctx.db.sqlite:
        yield True
        return
    with ctx.db.engine.connect() as conn:
        got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": PASS_LOCK_KEY}))
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PASS_LOCK_KEY})
                conn.commit()


def _yield(ctx: AppContext, pause: float, elapsed: float, ingest_seen: int) -> int:
    """Leave the database to ingest after a transaction that held it ``elapsed`` seconds.

    At least ``pause``; while this process's ingest writer has run since the last pause
    (``ingest_seen`` is its transaction count then), at least ``BUSY_YIELD`` times as long as
    the transaction took: on a loaded machine a batch may overrun its target several times
    before the sizer catches up, and ingest still gets the database and the CPU most of the
    time. ``pause`` 0 never waits (tests, or a pass wanted as fast as possible). Returns the
    writer's transaction count after the pause.
    """
    if pause > 0:
        busy = ctx.db.ingest_transactions != ingest_seen
        time.sleep(max(pause, BUSY_YIELD * elapsed) if busy else pause)
    return ctx.db.ingest_transactions


def vacuum_sqlite(ctx: AppContext) -> tuple[int, StepStats]:
    """Give free pages back to the filesystem in bounded steps (``auto_vacuum=INCREMENTAL``).

    Each step is its own write transaction of at most ``sqlite_vacuum_pages`` pages, sized like
    the delete batches: it starts at a tenth of that, grows while steps stay under
    ``retention_batch_seconds`` and shrinks when one takes longer (moving a page rewrites the
    pages that point to it, so a step's cost varies with the file's layout).
    A database created before auto-vacuum was turned on (``auto_vacuum=NONE``) keeps its free
    pages for reuse instead: nothing to do here (docs/operations.md tells how to convert it).
    Returns the pages given back and the steps' statistics.
    """
    most = ctx.settings.sqlite_vacuum_pages
    stats = StepStats()
    if not ctx.db.sqlite or most <= 0:
        return 0, stats
    sizer = BatchSizer(
        minimum=min(10, most), maximum=most, target_seconds=ctx.settings.retention_batch_seconds
    )
    size = max(sizer.minimum, most // 10)
    freed = 0
    ingest_seen = ctx.db.ingest_transactions
    with ctx.db.engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        if raw.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            return 0, stats
        while True:
            free = int(raw.execute("PRAGMA freelist_count").fetchone()[0])
            if free <= 0:
                return freed, stats
            with _turn(ctx):
                started = time.monotonic()
                # executescript steps the pragma to its end (execute() frees one page per
                # call); each step is its own short write transaction, like a delete batch.
                raw.executescript(
                    f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({int(size)}); COMMIT;"
                )
                elapsed = time.monotonic() - started
            stats.add(elapsed)
            RETENTION_BATCH_SECONDS.labels(step="vacuum").observe(elapsed)
            size = sizer.next(size, elapsed)
            after = int(raw.execute("PRAGMA freelist_count").fetchone()[0])
            freed += free - after
            if after >= free:
                return freed, stats
            ingest_seen = _yield(ctx, ctx.settings.retention_pause_seconds, elapsed, ingest_seen)


def run_pass(ctx: AppContext, *, dry_run: bool = False) -> PassResult:
    """Run one cleanup pass (or, with ``dry_run``, count what it would delete)."""
    started = time.monotonic()
    now = ctx.now()
    if dry_run:
        counts = _dry_run(ctx, now)
        return PassResult(
            deleted={t: counts.get(t, 0) for t in TABLES},
            dry_run=True,
            seconds=time.monotonic() - started,
        )
    with _pass_lock(ctx) as mine:
        if not mine:
            log.info("retention: another process's pass is running; skipped")
            return PassResult(
                deleted=dict.fromkeys(TABLES, 0),
                dry_run=False,
                skipped=True,
                seconds=time.monotonic() - started,
            )
        work = _Pass(ctx, now)
        work.run()
    vacuumed, vacuum = vacuum_sqlite(ctx) if work.deleted else (0, StepStats())
    steps = dict(work.steps)
    if vacuum.batches:
        steps["vacuum"] = vacuum
    seconds = time.monotonic() - started
    RETENTION_PASS_SECONDS.observe(seconds)
    for table, rows in work.deleted.items():
        RETENTION_DELETED.labels(table=table).inc(rows)
    result = PassResult(
        deleted={t: work.deleted.get(t, 0) for t in TABLES},
        dry_run=False,
        seconds=seconds,
        vacuumed_pages=vacuumed,
        batches=work.batches,
        slowest_batch_seconds=max(work.slowest, vacuum.slowest_seconds),
        steps=steps,
    )
    if work.deleted:
        log.info(
            "retention: deleted %s in %.1f s (%d batches, slowest %.3f s; %d pages vacuumed); "
            "slowest per step: %s",
            dict(work.deleted),
            seconds,
            result.batches,
            result.slowest_batch_seconds,
            vacuumed,
            {name: round(st.slowest_seconds, 3) for name, st in steps.items()},
        )
    return result


def _dry_run(ctx: AppContext, now: datetime) -> Counter[str]:
    """What a pass would delete, counted with the pass's conditions (nothing is locked).

    Unlike the pass it reads whole tables where it must (the events' references): a tool to run
    by hand, not periodically.
    """
    projects, webhooks = _projects_and_webhooks(ctx)
    counts: Counter[str] = Counter()
    with ctx.db.read() as session:

        def add(table: str, stmt: Select[Any]) -> None:
            counts[table] += int(session.scalar(stmt) or 0)

        for project_id, days in projects:
            cutoff = cutoffs(now, days).retention
            expired = (
                Occurrence.project_id == project_id,
                Occurrence.detection_time < cutoff,
                Occurrence.pending_hash.is_(None),
            )
            add("occurrences", select(func.count()).select_from(Occurrence).where(*expired))
            groups = select(Group.id).where(
                Group.project_id == project_id, Group.last_seen < cutoff
            )
            closed_hashes = select(PendingWindow.hash).where(
                PendingWindow.project_id == project_id,
                window_closed(PendingWindow.window_ends_at, now),
            )
            # Every occurrence of the project the pass deletes, by whichever rule.
            doomed = (
                ((Occurrence.detection_time < cutoff) & Occurrence.pending_hash.is_(None))
                | (Occurrence.group_id.is_(None) & Occurrence.pending_hash.is_(None))
                | Occurrence.group_id.in_(groups)
                | (Occurrence.group_id.is_(None) & Occurrence.pending_hash.in_(closed_hashes))
            )

            def users(which: ColumnElement[bool], project_id: int = project_id) -> Any:
                return (
                    select(Occurrence.event_id)
                    .where(
                        Occurrence.project_id == project_id,
                        Occurrence.event_id == Event.event_id,
                        which,
                    )
                    .exists()
                )

            add(
                "events",
                select(func.count())
                .select_from(Event)
                .where(Event.project_id == project_id, users(doomed), ~users(~doomed)),
            )
            add("groups", select(func.count()).select_from(groups.subquery()))
            for table, model in (
                ("forecasts", Forecast),
                ("activities", Activity),
                ("group_hashes", GroupHash),
            ):
                add(
                    table,
                    select(func.count()).select_from(model).where(model.group_id.in_(groups)),
                )
            hour = cutoffs(now, days).hourly_hour
            add(
                "hourly_counts",
                select(func.count())
                .select_from(HourlyCount)
                .join(Group, Group.id == HourlyCount.group_id)
                .where(
                    Group.project_id == project_id,
                    (HourlyCount.hour < hour) | (Group.last_seen < cutoff),
                ),
            )
            add(
                "occurrences",
                select(func.count())
                .select_from(Occurrence)
                .where(
                    Occurrence.project_id == project_id,
                    Occurrence.detection_time >= cutoff,
                    Occurrence.group_id.in_(groups),
                ),
            )
            # Pending occurrences of restarted windows not already expired by age.
            add(
                "occurrences",
                select(func.count())
                .select_from(Occurrence)
                .where(
                    Occurrence.project_id == project_id,
                    Occurrence.group_id.is_(None),
                    Occurrence.pending_hash.is_(None),
                    Occurrence.detection_time >= cutoff,
                ),
            )
            add(
                "status_change_records",
                select(func.count())
                .select_from(StatusChangeRecord)
                .where(
                    StatusChangeRecord.project_id == project_id,
                    StatusChangeRecord.created_at < cutoff,
                ),
            )
            hooks = webhooks.get(project_id, [])
            if hooks:
                add(
                    "webhook_deliveries",
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(
                        WebhookDelivery.webhook_id.in_(hooks),
                        WebhookDelivery.created_at < cutoff,
                        WebhookDelivery.state != "pending",
                    ),
                )
        closed = window_closed(PendingWindow.window_ends_at, now)
        add("pending_windows", select(func.count()).select_from(PendingWindow).where(closed))
        add(
            "occurrences",
            select(func.count())
            .select_from(Occurrence)
            .join(
                PendingWindow,
                (PendingWindow.project_id == Occurrence.project_id)
                & (PendingWindow.hash == Occurrence.pending_hash),
            )
            .where(closed, Occurrence.group_id.is_(None)),
        )
    return counts
