"""The counter journal: an issue's counts written once per fold, not once per transaction.

An occurrence joining an existing issue changes only commutative things: ``times_seen`` and
``version`` grow, ``first_seen`` can only fall, ``last_seen`` only rise, the newest occurrence's
texts win by detection time, and the hourly counts grow. Written in every group commit, those
UPDATEs rewrote the issue's row and its index entries (``times_seen``, ``last_seen``) and its
hourly-count row once per transaction; on PostgreSQL an UPDATE of an indexed column also adds an
entry to every index of ``groups``. So the transaction stores them as one journal row instead
(the changes of all its plain issues, as JSON text), committed with its occurrences, and a fold
applies the journal to ``groups`` and ``hourly_counts`` in one transaction, merging many group
commits' changes of the same issue into one UPDATE (docs/adr/0011-counter-journal.md).

Nothing is counted in memory: a crash leaves the journal rows, and the next fold applies them.
A fold runs after an ingest transaction once ``counter_fold_seconds`` passed since the last one
(``fold_if_due``), one interval after the last journal row of a burst (``idle_wait``), before a
thread's outermost session of the application (``Database.before_session``: every answer, job
and triage sees exact counts), and before an ingest transaction after a quiet spell
(``fold_if_stale``). Issues whose transaction decides anything beyond counting (a status or
priority change, a regression, an ignored issue's rules, a new issue), small groups, issues near
an age rule and issues this process did not count into lately are written directly, as before.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.context import AppContext, CounterJournalState
from app.occurrences.ingest import driver
from app.occurrences.ingest import statements as st
from app.occurrences.ingest.recent import RecentIssues
from app.occurrences.ingest.retry import retrying
from app.occurrences.ingest.rules import Issue

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Serializes folds on PostgreSQL (two folds deleting the same journal rows in different orders
# could deadlock); any constant outside the ingest's fingerprint keys' use is fine.
FOLD_LOCK_KEY = 0x1C0_0A7E5
# Ingest folds what is pending first when it has not checked for this long (fold_if_stale).
CHECK_SECONDS = 10.0
# The longest a fold before a read waits for its locks.
READ_FOLD_WAIT_MS = 2000
# Occurrences a group commit must store to journal its counts (write.py ``_count``).
JOURNAL_MIN_ROWS = 100
# How far from an age rule's cutoff an issue must be to be journaled (``safe_since``): far more
# than the longest a journal row waits for a fold while the service runs.
SAFETY_MARGIN = timedelta(hours=1)


def micros(moment: datetime) -> int:
    """A moment as whole microseconds since the epoch (exact, unlike ``timestamp()``)."""
    return (moment - EPOCH) // MICROSECOND


def moment_of(us: int) -> datetime:
    """The moment of ``micros``."""
    return EPOCH + us * MICROSECOND


def journaled(issue: Issue, since: datetime) -> bool:
    """Whether the transaction's changes of ``issue`` are only counting, so they can wait.

    ``since`` (``safe_since``) keeps an issue last seen long ago out of the journal: its
    ``last_seen`` as stored then decides the age rules (retention, auto-resolve) correctly even
    in a transaction that runs between a fold and the next journal row.
    """
    return not (
        issue.new
        or issue.status_changed
        or issue.priority_changed
        or issue.regressed_by
        or issue.ignored_times
        or issue.stored_last_seen < since
    )


def safe_since(now: datetime, project: st.ProjectInfo) -> datetime:
    """The oldest stored ``last_seen`` that no age rule of the project is near.

    Retention deletes issues unseen for ``retention_days``, auto-resolve resolves those unseen
    for ``resolve_age_hours``; a journaled issue's stored ``last_seen`` lags by seconds, so an
    issue is journaled only while it is ``SAFETY_MARGIN`` or more away from the nearer rule.
    """
    ages = [timedelta(days=project.retention_days)] if project.retention_days > 0 else []
    if project.resolve_age_hours > 0:
        ages.append(timedelta(hours=project.resolve_age_hours))
    if not ages:
        return datetime.min.replace(tzinfo=UTC)
    return now - min(ages) + SAFETY_MARGIN


def entry(issue: Issue, now_us: int, hours: Sequence[tuple[int, int]]) -> list[Any]:
    """One issue's counting changes: ``[id, added, bumps, when, first, last, newest, hours]``.

    ``first`` and ``last`` are None unless this transaction moved them; ``newest`` is None unless
    one of its occurrences became the issue's newest (``[title, subtitle, culprit, level, id,
    detection time]``). Times are microseconds since the epoch.
    """
    n = issue.newest
    newest = list(st.newest_values(n, micros)) if n is not None else None
    return [
        issue.id,
        issue.added,
        issue.bumps,
        now_us,
        micros(issue.first_seen) if issue.first_changed else None,
        micros(issue.last_seen) if issue.last_changed else None,
        newest,
        hours,
    ]


def record(cur: Any, sql: st.Statements, entries: list[list[Any]]) -> None:
    """Store one transaction's entries as one journal row."""
    if entries:
        driver.execute_many(cur, sql.insert_journal, [(orjson.dumps(entries).decode(),)])


# The merged state of one issue: [added, bumps, when, first, last, newest, {hour: n}, the
# transaction time of the newest's entry] (a list, not an object: a fold merges one entry per
# issue and transaction, tens of thousands a second).
Merged = list[Any]


def merged(rows: Iterable[tuple[int, str]]) -> dict[int, Merged]:
    """The journal rows' entries merged per issue, in journal order (a tie: the later newest)."""
    out: dict[int, Merged] = {}
    for _, entries in sorted(rows):
        for gid, added, bumps, when, first, last, newest, hours in orjson.loads(entries):
            m = out.get(gid)
            if m is None:
                out[gid] = [added, bumps, when, first, last, newest, dict(hours), when]
                continue
            m[0] += added
            m[1] += bumps
            if when > m[2]:
                m[2] = when
            if first is not None and (m[3] is None or first < m[3]):
                m[3] = first
            if last is not None and (m[4] is None or last > m[4]):
                m[4] = last
            if newest is not None and (m[5] is None or newest[5] >= m[5][5]):
                m[5] = newest
                m[7] = when
            counts = m[6]
            for hour, n in hours:
                counts[hour] = counts.get(hour, 0) + n
    return out


def _updates(
    folded: dict[int, Merged], current: Iterable[tuple[Any, ...]], times: st.Times
) -> tuple[dict[st.Shape, list[list[Any]]], list[tuple[int, int, int]]]:
    """The UPDATE of each issue still stored, and its hourly counts (deleted issues: nothing)."""
    by_shape: dict[st.Shape, list[list[Any]]] = defaultdict(list)
    hourly: list[tuple[int, int, int]] = []
    db: dict[int, Any] = {}  # microseconds -> the driver's form, each converted once
    us: dict[Any, int] = {}  # a stored time -> microseconds, each converted once

    def to_db(value: int) -> Any:
        found = db.get(value)
        if found is None:
            found = db[value] = times.db(moment_of(value))
        return found

    def stored(value: Any) -> int:
        found = us.get(value)
        if found is None:
            found = us[value] = micros(times.read(value))
        return found

    for gid, first_seen, last_seen, latest, updated_at in current:
        added, bumps, when, first, last, newest, hours, newest_when = folded[gid]
        if first is not None and first >= stored(first_seen):
            first = None
        if last is not None and last <= stored(last_seen):
            last = None
        updated = stored(updated_at)
        newest_values = None
        if newest is not None:
            shown = stored(latest)
            # As in rules.count_in, a tie goes to the later transaction: the journaled one
            # unless the row was written after it (a direct write, a triage).
            if newest[5] > shown or (newest[5] == shown and newest_when >= updated):
                newest_values = (*newest[:5], to_db(newest[5]))
        # updated_at never moves back (a triage may have written the row after the entries).
        when = max(when, updated)
        shape, params = st.issue_update(
            gid,
            added,
            bumps,
            to_db(when),
            to_db(first) if first is not None else None,
            to_db(last) if last is not None else None,
            newest_values,
            None,
            None,
        )
        by_shape[shape].append(params)
        hourly += [(gid, hour, n) for hour, n in sorted(hours.items())]
    return by_shape, hourly


def fold(ctx: AppContext, *, lock_timeout_ms: int | None = None) -> int:
    """Apply the whole journal in one transaction; returns the journal rows folded.

    Retried like an ingest transaction (``retry.retrying``) when PostgreSQL reports a deadlock
    or a serialization failure (a fold and a triage touching the same issues).
    ``lock_timeout_ms`` bounds each wait for a lock on PostgreSQL (a fold before a read: the
    read goes on without it).
    """
    return retrying(lambda: _fold_once(ctx, lock_timeout_ms), "counter fold")


def _fold_once(ctx: AppContext, lock_timeout_ms: int | None) -> int:
    with ctx.db.write_connection() as conn:
        sql = st.statements(conn.dialect.name)
        cur = driver.cursor(conn)
        if sql.postgres:
            if lock_timeout_ms is not None:
                driver.fetch(
                    cur, "SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout_ms}ms",)
                )
            driver.fetch(cur, "SELECT pg_advisory_xact_lock(%s)", (FOLD_LOCK_KEY,))
        # DELETE … RETURNING: exactly the rows this fold applies, whatever commits meanwhile.
        rows = driver.fetch(cur, sql.take_journal, ())
        if not rows:
            return 0
        folded = merged(rows)
        # Locked on PostgreSQL by project, then id, as ingest locks them (no deadlock cycle).
        current = driver.fetch(cur, sql.issues_to_fold, (sql.ids_param(sorted(folded)),))
        by_shape, hourly = _updates(folded, current, st.Times(sql))
        driver.execute_set(cur, sql.postgres, sql.upsert_hourly, sql.upsert_hourly_set, hourly)
        for shape, params in by_shape.items():
            driver.execute_set(
                cur, sql.postgres, sql.update_issue(shape), sql.update_issue_set(shape), params
            )
        conn.commit()
    return len(rows)


def state_of(ctx: AppContext) -> CounterJournalState:
    """The process's counter-journal state (created on first use)."""
    state = ctx.counter_journal
    if state is None:
        state = ctx.counter_journal = RecentIssues()
    return state


def fold_if_due(ctx: AppContext) -> None:
    """Fold after an ingest transaction when ``counter_fold_seconds`` passed since the last."""
    state = state_of(ctx)
    if time.monotonic() - state.fold_at >= ctx.settings.counter_fold_seconds:
        # Set first: a failing fold (database gone) is not retried after every transaction.
        state.fold_at = time.monotonic()
        state.rotate()
        state.checked_at = state.fold_at
        try:
            fold(ctx)
        except DBAPIError as exc:
            # The journal stays; the next fold (or the next read) applies it.
            log.warning("counter fold failed (%s); retried later", type(exc).__name__)
        except Exception:  # the ingest that called it is committed and answered: carry on
            log.exception("counter fold failed; retried later")


def committed_journal(ctx: AppContext) -> None:
    """An ingest transaction of this process committed a journal row (``idle_wait``)."""
    state_of(ctx).journaled_at = time.monotonic()


def idle_wait(ctx: AppContext) -> float | None:
    """Seconds until this process's journaled counts are due for a fold; None: none are left.

    A fold after a group commit runs only when the interval has passed, so the last rows of a
    burst would wait for the next read or ingest (for a reader around the application, without
    end). The group-commit writer (a timer, or its thread's idle wait) and the Kafka consumer
    (an empty poll) ask this when ingest goes quiet, and call ``fold_if_due`` once it is 0:
    counts as stored trail the occurrences by one interval at most.

    Compared with the start of this process's last fold when due: a row committed before it
    was taken by that fold's ``DELETE``.
    """
    state = ctx.counter_journal
    if state is None or state.journaled_at <= state.fold_at:
        return None  # nothing journaled by this process, or all of it taken by its last fold
    due = state.journaled_at + ctx.settings.counter_fold_seconds - time.monotonic()
    return max(due, 0.0)


def fold_if_idle(ctx: AppContext) -> None:
    """``fold_if_due`` once this process's journaled counts have waited an interval."""
    if idle_wait(ctx) == 0.0:
        fold_if_due(ctx)


def fold_if_stale(ctx: AppContext) -> None:
    """Before an ingest transaction: fold what any process left, if not checked lately.

    The decisions of ingest (a regression after the auto-resolve age) read ``last_seen`` as
    stored. After a quiet spell, the journal may still hold the last counts of a burst (of this
    process or another): folding them first keeps what ingest reads within ``CHECK_SECONDS``
    plus one fold interval of the truth, far inside ``SAFETY_MARGIN``.
    """
    state = state_of(ctx)
    now = time.monotonic()
    if now - state.checked_at >= CHECK_SECONDS:
        state.checked_at = now
        fold_pending(ctx)


def fold_pending(ctx: AppContext) -> None:
    """Fold if the journal holds anything (``Database.before_session``: exact reads).

    On SQLite under this process's write gate, like the retention pass: the inline ingest
    writer then keeps serving requests instead of waiting for the database lock in SQLite's
    busy handler. A fold that cannot have its locks within ``READ_FOLD_WAIT_MS`` (or fails) is
    left for later: the read goes on with the counts folded so far.
    """
    try:
        with ctx.db.engine.connect() as conn:
            pending = conn.execute(text("SELECT 1 FROM counter_journal LIMIT 1")).first()
    except DBAPIError as exc:
        if _missing_table(exc):
            return  # not migrated yet (start-up, or a database being migrated)
        raise
    if pending is None:
        return
    try:
        if not ctx.db.sqlite:
            fold(ctx, lock_timeout_ms=READ_FOLD_WAIT_MS)
            return
        gate = ctx.db.checkpoint_gate
        if not gate.acquire(timeout=READ_FOLD_WAIT_MS / 1000):
            log.warning("counter fold before a read skipped: the database stayed busy")
            return
        try:
            fold(ctx)
        finally:
            gate.release()
    except DBAPIError as exc:
        # A database that reads but cannot write (disk full, read-only), or busy past the
        # wait: the read still answers, with the counts folded so far.
        log.warning("counter fold before a read failed (%s)", type(exc).__name__)
    except Exception:
        log.exception("counter fold before a read failed")


def _missing_table(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code == "42P01" or "no such table" in str(exc.orig)
