"""Writing a decided batch with a few set-based statements, then the rare after-effects.

In order: short ids (one UPDATE per project), new issues (multi-row INSERT … RETURNING id),
adopted pending occurrences, hashes, events, occurrences (COPY on PostgreSQL), hourly counts, and
one UPDATE per touched existing issue, aggregated over its occurrences (grouped by the columns
it sets, one ``executemany`` per shape). Regressions, notifications and the rules of ignored
issues then go through the ORM: they are rare, and their modules own those rules.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from app.db import json_text
from app.issues.activity import add_activity
from app.lifecycle.hooks import on_ignored_occurrences
from app.models import Group, HourlyCount
from app.notifications.outbox import enqueue
from app.occurrences.ingest import statements as st
from app.occurrences.ingest.batch import Batch, Row, load_webhook_projects
from app.occurrences.ingest.rules import Issue, epoch_hour
from app.occurrences.validation import truncate_culprit


def write(batch: Batch) -> None:
    """Every row the batch decided, then the after-effects; the caller commits."""
    sql, cur = batch.sql, batch.cur
    when = batch.times.db(batch.now)
    if batch.created:
        _insert_issues(batch, when)
    st.execute_many(
        cur,
        sql.adopt_pending,
        [(issue.id, project_id, h) for project_id, h, issue in batch.adopted],
    )
    hashes = [(i.project_id, i.hash, i.id) for i in batch.created]
    hashes += [(project_id, h, issue.id) for project_id, h, issue in batch.links]
    st.execute_many(cur, sql.insert_hashes, hashes)
    st.execute_many(
        cur,
        sql.insert_events,
        [(p, e, json_text(data), when) for (p, e), data in batch.events.items() if data],
    )
    _insert_occurrences(batch, when)
    hourly = sorted((issue.id, hour, n) for (issue, hour), n in batch.hourly.items())
    st.execute_many(cur, sql.upsert_hourly, hourly)
    _update_issues(batch, when)
    _after_effects(batch)


def _insert_issues(batch: Batch, when: Any) -> None:
    sql, cur, t = batch.sql, batch.cur, batch.times.db
    per_project: dict[int, list[Issue]] = defaultdict(list)
    for issue in batch.created:
        per_project[issue.project_id].append(issue)
    short_ids: dict[Issue, int] = {}
    for project_id, issues in sorted(per_project.items()):
        [(end,)] = st.fetch(cur, sql.take_short_ids, (len(issues), project_id))
        for offset, issue in enumerate(issues):
            short_ids[issue] = end - len(issues) + offset
    by_key = {(i.project_id, i.hash): i for i in batch.created}
    for start in range(0, len(batch.created), st.ISSUE_CHUNK):
        chunk = batch.created[start : start + st.ISSUE_CHUNK]
        params: list[Any] = []
        for i in chunk:
            n = i.newest
            assert n is not None  # a new issue shows its first occurrence at least
            params += (
                i.project_id, i.type_id, i.hash, short_ids[i], n.issue_title, n.subtitle,
                truncate_culprit(n.culprit), n.level, i.status, i.substatus, when, i.priority,
                i.initial_priority, False, t(i.first_seen), t(i.last_seen), i.added, n.id,
                t(n.detection_time), i.assignee, i.notify_created, i.bumps, when, when,
            )  # fmt: skip
        statement = sql.insert_issues(len(chunk))
        for issue_id, project_id, h in st.fetch(cur, statement, params):
            by_key[(project_id, h)].id = issue_id


def _occurrence_params(row: Row, t: Any, when: Any) -> tuple[Any, ...]:
    occ = row.occ
    return (
        occ.project_id,
        occ.id,
        row.issue.id if row.issue is not None else None,
        row.pending_hash,
        occ.type_id,
        occ.event_id,
        json_text(occ.fingerprint),  # a tuple: orjson writes the same array
        occ.issue_title,
        occ.subtitle,
        occ.culprit,
        occ.resource_id,
        json_text(occ.evidence_data),
        json_text(occ.evidence_display),
        t(occ.detection_time),
        occ.level,
        row.priority,
        occ.assignee,
        when,
    )


def _insert_occurrences(batch: Batch, when: Any) -> None:
    if not batch.rows:
        return
    sql, cur = batch.sql, batch.cur
    t = batch.times.db
    rows = [_occurrence_params(r, t, when) for r in batch.rows.values()]
    if sql.postgres:
        # COPY: far less work per row than INSERT on both sides; duplicates were filtered
        # before, and a racing writer's row makes the COPY fail with a unique-key error like an
        # INSERT would (the transaction is retried).
        with st.driver_errors(sql.copy_occurrences), cur.copy(sql.copy_occurrences) as copy:
            for row in rows:
                copy.write_row(row)
    else:
        st.execute_many(cur, sql.insert_occurrences, rows)


def change_of(issue: Issue, t: Any) -> st.IssueChange:
    """The UPDATE an existing issue needs (unchanged column groups left out)."""
    assert issue.id is not None
    n = issue.newest
    newest = (
        (
            n.issue_title,
            n.subtitle,
            truncate_culprit(n.culprit),
            n.level,
            n.id,
            t(n.detection_time),
        )
        if n is not None
        else None
    )
    status = (
        (issue.status, issue.substatus, t(issue.substatus_changed_at))
        if issue.status_changed and issue.substatus_changed_at is not None
        else None
    )
    return st.IssueChange(
        id=issue.id,
        added=issue.added,
        bumps=issue.bumps,
        first_seen=t(issue.first_seen) if issue.first_changed else None,
        last_seen=t(issue.last_seen) if issue.last_changed else None,
        newest=newest,
        priority=issue.priority if issue.priority_changed else None,
        status=status,
    )


def _update_issues(batch: Batch, when: Any) -> None:
    by_shape: dict[tuple[bool, bool, bool, bool, bool], list[tuple[Any, ...]]] = {}
    for _, issue in sorted(batch.touched.items()):
        if issue.added or issue.status_changed:
            change = change_of(issue, batch.times.db)
            by_shape.setdefault(change.shape(), []).append(change.params(when))
    for shape, params in by_shape.items():
        st.execute_many(batch.cur, batch.sql.update_issue(shape), params)


def _after_effects(batch: Batch) -> None:
    """Regression activities, notifications, and the rules of ignored issues (ORM)."""
    session, ctx, now = batch.session, batch.ctx, batch.now
    rare = [i for i in batch.touched.values() if i.regressed_by or i.ignored_times]
    rare += [i for i in batch.created if i.regressed_by]
    if batch.created or rare:
        load_webhook_projects(batch)
    for issue in batch.created:
        if issue.project_id in batch.webhook_projects and issue.notify_created:
            group = session.get(Group, issue.id)
            assert group is not None
            enqueue(session, ctx, group, "issue.created", now=now)
    for issue in rare:
        group = session.get(Group, issue.id)
        assert group is not None
        for occurrence_id in issue.regressed_by:
            add_activity(
                session, group, "set_regression", now=now, data={"occurrence_id": occurrence_id}
            )
            session.flush()
            if issue.project_id in batch.webhook_projects:
                enqueue(session, ctx, group, "issue.regressed", now=now)
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
