"""Writing a decided batch with a few set-based statements, then the rare after-effects.

In order: short ids (one UPDATE per project), new issues (multi-row INSERT … RETURNING id),
adopted pending occurrences, hashes, events, occurrences (COPY on PostgreSQL), hourly counts, and
one UPDATE per touched existing issue, aggregated over its occurrences (grouped by the columns
it sets, one ``executemany`` per shape). On PostgreSQL the new issues, hashes, events, hourly
counts and issue updates are each one statement over binary arrays (``driver.execute_set``),
not one execution per row nor a statement text per row count. Regressions, notifications and
the rules of ignored issues then go through the ORM: they are rare, and their modules own those
rules.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import select

from app.db import json_text
from app.issues.activity import add_activity
from app.lifecycle.hooks import on_ignored_occurrences
from app.lifecycle.transitions import SET_REGRESSION
from app.models import Group, HourlyCount
from app.notifications.outbox import enqueue
from app.notifications.rules import ISSUE_CREATED, ISSUE_REGRESSED
from app.occurrences.ingest import driver
from app.occurrences.ingest import statements as st
from app.occurrences.ingest.batch import Batch, load_webhook_projects
from app.occurrences.ingest.journal import (
    JOURNAL_MIN_ROWS,
    entry,
    journaled,
    micros,
    record,
    safe_since,
    state_of,
)
from app.occurrences.ingest.rules import Issue, epoch_hour
from app.occurrences.validation import truncate_culprit


def write(batch: Batch) -> None:
    """Every row the batch decided, then the after-effects; the caller commits."""
    sql, cur = batch.sql, batch.cur
    when = batch.times.db(batch.now)
    if batch.created:
        _insert_issues(batch, when)
    driver.execute_many(
        cur,
        sql.adopt_pending,
        [(issue.id, project_id, h) for project_id, h, issue in batch.adopted],
    )
    hashes = [(i.project_id, i.hash, i.id) for i in batch.created]
    hashes += [(project_id, h, issue.id) for project_id, h, issue in batch.links]
    driver.execute_set(cur, sql.postgres, sql.insert_hashes, sql.insert_hashes_set, hashes)
    events = [(p, e, json_text(d), when) for (p, e), d in batch.events.items() if d]
    driver.execute_set(cur, sql.postgres, sql.insert_events, sql.insert_events_set, events)
    _insert_occurrences(batch, when)
    _count(batch, when)
    _after_effects(batch)


def _insert_issues(batch: Batch, when: Any) -> None:
    sql, cur, t, b = batch.sql, batch.cur, batch.times.db, batch.sql.boolean
    per_project: dict[int, list[Issue]] = defaultdict(list)
    for issue in batch.created:
        per_project[issue.project_id].append(issue)
    short_ids: dict[Issue, int] = {}
    for project_id, issues in sorted(per_project.items()):
        [(end,)] = driver.fetch(cur, sql.take_short_ids, (len(issues), project_id))
        for offset, issue in enumerate(issues):
            short_ids[issue] = end - len(issues) + offset
    by_key = {(i.project_id, i.hash): i for i in batch.created}
    rows: list[tuple[Any, ...]] = []
    for i in batch.created:
        n = i.newest
        assert n is not None  # a new issue shows its first occurrence at least
        rows.append(
            (
                i.project_id, i.type_id, i.hash, short_ids[i], n.issue_title, n.subtitle,
                truncate_culprit(n.culprit), n.level, i.status, i.substatus, when, i.priority,
                i.initial_priority, b(False), t(i.first_seen), t(i.last_seen), i.added, n.id,
                t(n.detection_time), i.assignee, b(i.notify_created), i.bumps, when, when,
            )
        )  # fmt: skip
    if sql.postgres:
        # One statement over an array per column (no parameter limit, one prepared text).
        inserted = driver.fetch(cur, sql.insert_issues_set, driver.column_arrays(rows))
    else:
        inserted = []
        for start in range(0, len(rows), st.ISSUE_CHUNK):
            chunk = rows[start : start + st.ISSUE_CHUNK]
            params = [value for row in chunk for value in row]
            inserted += driver.fetch(cur, sql.insert_issues(len(chunk)), params)
    for issue_id, project_id, h in inserted:
        by_key[(project_id, h)].id = issue_id


def _occurrence_rows(batch: Batch, when: Any) -> list[tuple[Any, ...]]:
    """The occurrence rows in ``OCCURRENCE_COLUMNS`` order (JSON columns as orjson text)."""
    t = batch.times.db
    dumps = orjson.dumps  # json_text, without a call of its own per column of every row
    return [
        (
            occ.project_id,
            occ.id,
            issue.id if issue is not None else None,
            row.pending_hash,
            occ.type_id,
            occ.event_id,
            dumps(occ.fingerprint).decode(),  # a tuple: orjson writes the same array
            occ.issue_title,
            occ.subtitle,
            occ.culprit,
            occ.resource_id,
            dumps(occ.evidence_data).decode(),
            dumps(occ.evidence_display).decode(),
            t(occ.detection_time),
            occ.level,
            row.priority,
            occ.assignee,
            when,
        )
        for row in batch.rows.values()
        for occ, issue in ((row.occ, row.issue),)
    ]


def _insert_occurrences(batch: Batch, when: Any) -> None:
    if not batch.rows:
        return
    sql, cur = batch.sql, batch.cur
    rows = _occurrence_rows(batch, when)
    if sql.postgres:
        # COPY: far less work per row than INSERT on both sides; duplicates were filtered
        # before, and a racing writer's row makes the COPY fail with a unique-key error like an
        # INSERT would (the transaction is retried).
        with driver.driver_errors(sql.copy_occurrences), cur.copy(sql.copy_occurrences) as copy:
            for row in rows:
                copy.write_row(row)
    else:
        driver.execute_many(cur, sql.insert_occurrences, rows)


def change_of(issue: Issue, t: Any, when: Any) -> tuple[st.Shape, list[Any]]:
    """The UPDATE an existing issue needs (unchanged column groups left out)."""
    assert issue.id is not None
    n = issue.newest
    newest = st.newest_values(n, t) if n is not None else None
    status = (
        (issue.status, issue.substatus, t(issue.substatus_changed_at))
        if issue.status_changed and issue.substatus_changed_at is not None
        else None
    )
    return st.issue_update(
        issue.id,
        issue.added,
        issue.bumps,
        when,
        t(issue.first_seen) if issue.first_changed else None,
        t(issue.last_seen) if issue.last_changed else None,
        newest,
        issue.priority if issue.priority_changed else None,
        status,
    )


def _count(batch: Batch, when: Any) -> None:
    """Hourly counts and issue updates: journaled when only counting changed, else written.

    Only a large group journals (``JOURNAL_MIN_ROWS``): a fold costs about twice a direct
    UPDATE per issue and pays off when several transactions touch an issue before it, which
    happens when the writer is saturated; a small group (a lone request, a quiet stream) writes
    its counts at once and leaves nothing for a fold to stall later requests with.
    """
    use_journal = len(batch.rows) >= JOURNAL_MIN_ROWS
    # Only a large group asks (a single POST's group would compute it for nothing).
    since = {p.id: safe_since(batch.now, p) for p in batch.projects.values()} if use_journal else {}
    recent = state_of(batch.ctx)
    direct_hours: list[tuple[int, int, int]] = []
    journal_hours: dict[Issue, list[tuple[int, int]]] = defaultdict(list)
    plain: dict[Issue, bool] = {}
    for (issue, hour), n in batch.hourly.items():
        waits = plain.get(issue)
        if waits is None:
            waits = plain[issue] = (
                use_journal and journaled(issue, since[issue.project_id]) and recent.hot(issue.ref)
            )
        if waits:
            journal_hours[issue].append((hour, n))
        else:
            assert issue.id is not None
            direct_hours.append((issue.id, hour, n))
    sql, cur = batch.sql, batch.cur
    driver.execute_set(
        cur, sql.postgres, sql.upsert_hourly, sql.upsert_hourly_set, sorted(direct_hours)
    )
    by_shape: dict[st.Shape, list[list[Any]]] = {}
    entries: list[list[Any]] = []
    now_us = micros(batch.now)
    t = batch.times.db
    for _, issue in sorted(batch.touched.items()):
        if not (issue.added or issue.status_changed):
            continue
        if plain.get(issue, False):
            entries.append(entry(issue, now_us, sorted(journal_hours.get(issue, ()))))
            continue
        shape, params = change_of(issue, t, when)
        found = by_shape.get(shape)
        if found is None:
            by_shape[shape] = [params]
        else:
            found.append(params)
    record(cur, sql, entries)
    batch.journaled = bool(entries)
    recent.touch(batch.touched)
    recent.touch(i.id for i in batch.created if i.id is not None)
    for shape, rows in by_shape.items():
        driver.execute_set(
            cur, sql.postgres, sql.update_issue(shape), sql.update_issue_set(shape), rows
        )


def _after_effects(batch: Batch) -> None:
    """Regression activities, notifications, and the rules of ignored issues (ORM)."""
    ctx, now = batch.ctx, batch.now
    # In id order, as the issues were read on PostgreSQL (SQLite reads them unordered).
    rare = sorted(
        (i for i in batch.touched.values() if i.regressed_by or i.ignored_times),
        key=lambda i: i.ref,
    )
    rare += [i for i in batch.created if i.regressed_by]
    if batch.created or rare:
        load_webhook_projects(batch)
    notified = [
        i for i in batch.created if i.project_id in batch.webhook_projects and i.notify_created
    ]
    if not notified and not rare:
        return  # the common group: no ORM session opened (batch.Txn)
    session = batch.session
    for issue in notified:
        group = session.get(Group, issue.id)
        assert group is not None
        enqueue(session, ctx, group, ISSUE_CREATED, now=now)
    for issue in rare:
        group = session.get(Group, issue.id)
        assert group is not None
        for occurrence_id in issue.regressed_by:
            add_activity(
                session, group, SET_REGRESSION, now=now, data={"occurrence_id": occurrence_id}
            )
            session.flush()
            if issue.project_id in batch.webhook_projects:
                enqueue(session, ctx, group, ISSUE_REGRESSED, now=now)
        if issue.ignored_times:
            hours = sorted({epoch_hour(t) for t in issue.ignored_times})
            counts = dict(
                session.execute(
                    select(HourlyCount.hour, HourlyCount.count).where(
                        HourlyCount.group_id == group.id, HourlyCount.hour.in_(hours)
                    )
                ).all()
            )
            on_ignored_occurrences(
                session,
                ctx,
                group,
                hour_counts={h: int(counts.get(h, 0)) for h in hours},
                detection_times=issue.ignored_times,
                now=now,
            )
    session.flush()
