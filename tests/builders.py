"""Builders for test data, with overrides."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from app.context import AppContext
from app.lifecycle.forecast import epoch_hour
from app.models import Group, GroupHash, HourlyCount, Occurrence, Organization, Project


def occurrence(**overrides: Any) -> dict[str, Any]:
    """A valid occurrence payload for project 1 and the built-in error type."""
    event_id = overrides.pop("event_id", None) or uuid.uuid4().hex
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "project_id": 1,
        "fingerprint": ["fp-1"],
        "issue_title": "Slow thing",
        "subtitle": "in handler",
        "culprit": "app.views.index",
        "resource_id": None,
        "evidence_data": {"duration_ms": 1234},
        "evidence_display": [
            {"name": "Duration", "value": "1234 ms", "important": True},
            {"name": "Where", "value": "index", "important": False},
        ],
        "type": 1,
        "detection_time": "2026-11-02T11:00:00Z",
        "level": "warning",
        "event": {
            "event_id": event_id,
            "project_id": overrides.get("project_id", 1),
            "platform": "python",
            "timestamp": 1793617200.0,
            "tags": {"env": "prod"},
        },
    }
    body.update(overrides)
    return body


def make_key(
    ctx: Any,
    *,
    organization_id: int = 1,
    scopes: tuple[str, ...] = ("ingest", "read", "triage"),
    project_ids: list[int] | None = None,
) -> str:
    """Store an API key directly and return its token."""
    from app.auth.principal import hash_token, new_token
    from app.models import ApiKey

    token = new_token()
    with ctx.db.write() as session:
        session.add(
            ApiKey(
                organization_id=organization_id,
                name="test",
                token_hash=hash_token(token),
                scopes=list(scopes),
                project_ids=project_ids,
            )
        )
        session.commit()
    return token


def make_org_with_project(
    ctx: Any, org_id: int, project_id: int, *, early_adopter: bool = False
) -> None:
    """Store another organization with one project."""
    from app.models import Organization, Project

    with ctx.db.write() as session:
        session.add(
            Organization(
                id=org_id, slug=f"org{org_id}", name=f"Org {org_id}", early_adopter=early_adopter
            )
        )
        session.flush()
        session.add(
            Project(
                id=project_id, organization_id=org_id, slug=f"p{project_id}", name=f"P {project_id}"
            )
        )
        session.commit()


def set_flag(
    ctx: Any, type_id: int, kind: str, stage: str, organizations: list[int] | None = None
) -> None:
    """Store a rollout flag row."""
    from app.models import RolloutFlag

    with ctx.db.write() as session:
        row = session.get(RolloutFlag, (type_id, kind))
        if row is None:
            row = RolloutFlag(type_id=type_id, kind=kind)
            session.add(row)
        row.stage = stage
        row.organizations = organizations or []
        session.commit()
    cache = ctx.flag_cache
    if cache is not None:
        cache.invalidate()


_seq = itertools.count(1)


def ctx_of(app: FastAPI) -> AppContext:
    """The application's context."""
    ctx: AppContext = app.state.ctx
    return ctx


def md5(text: str) -> str:
    """The grouping hash of a fingerprint element."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def make_organization(ctx: AppContext, **overrides: Any) -> Organization:
    """An organization (id and slug unique unless given)."""
    n = next(_seq)
    values: dict[str, Any] = {"id": 1000 + n, "slug": f"org-{n}", "name": f"Org {n}"}
    values.update(overrides)
    with ctx.db.write() as session:
        row = Organization(**values)
        session.add(row)
        session.commit()
    return row


def make_project(ctx: AppContext, **overrides: Any) -> Project:
    """A project of organization 1 unless told otherwise."""
    n = next(_seq)
    values: dict[str, Any] = {
        "id": 1000 + n,
        "organization_id": 1,
        "slug": f"proj-{n}",
        "name": f"Project {n}",
        "resolve_age_hours": 0,
    }
    values.update(overrides)
    with ctx.db.write() as session:
        row = Project(**values)
        session.add(row)
        session.commit()
    return row


def make_group(ctx: AppContext, *, fingerprint: str | None = None, **overrides: Any) -> Group:
    """An issue (unresolved/new, type error, project 1) with its fingerprint hash linked."""
    n = next(_seq)
    now = ctx.now()
    fingerprint = fingerprint or f"fp-{n}"
    values: dict[str, Any] = {
        "project_id": 1,
        "type_id": 1,
        "hash": md5(fingerprint),
        "short_id": n,
        "title": f"Issue {n}",
        "subtitle": "",
        "status": 0,
        "substatus": 7,
        "priority": 50,
        "initial_priority": 50,
        "first_seen": now,
        "last_seen": now,
        "latest_detection_time": now,
        "times_seen": 1,
        "substatus_changed_at": now,
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    with ctx.db.write() as session:
        group = Group(**values)
        session.add(group)
        session.flush()
        session.add(GroupHash(project_id=group.project_id, hash=group.hash, group_id=group.id))
        session.commit()
    return group


def add_occurrences(ctx: AppContext, group_id: int, times: list[datetime]) -> dict[int, int]:
    """Store occurrences of an issue and count them per hour; returns the touched hours' totals."""
    with ctx.db.write() as session:
        group = session.get(Group, group_id)
        assert group is not None
        touched: dict[int, int] = {}
        for t in times:
            occ_id = f"{next(_seq):032x}"
            session.add(
                Occurrence(
                    project_id=group.project_id,
                    id=occ_id,
                    group_id=group.id,
                    type_id=group.type_id,
                    event_id=occ_id,
                    fingerprint=["x"],
                    issue_title=group.title,
                    subtitle="",
                    detection_time=t,
                    level="info",
                    priority=50,
                    received_at=ctx.now(),
                )
            )
            hour = epoch_hour(t)
            row = session.get(HourlyCount, (group.id, hour))
            if row is None:
                row = HourlyCount(group_id=group.id, hour=hour, count=0)
                session.add(row)
            row.count += 1
            touched[hour] = row.count
            group.times_seen += 1
            group.last_seen = max(group.last_seen, t)
        session.commit()
    return touched


def set_hourly_counts(ctx: AppContext, group_id: int, counts: dict[int, int]) -> None:
    """Write hourly counts of an issue directly (for forecasts)."""
    with ctx.db.write() as session:
        for hour, count in counts.items():
            row = session.get(HourlyCount, (group_id, hour))
            if row is None:
                session.add(HourlyCount(group_id=group_id, hour=hour, count=count))
            else:
                row.count = count
        session.commit()


def receive(ctx: AppContext, group_id: int, times: list[datetime]) -> None:
    """What ingest does for an issue's new occurrences: count them, then apply the ignored rules."""
    from app.issues.write import lock_group
    from app.lifecycle.hooks import on_ignored_occurrences
    from app.notifications.outbox import render_queued

    touched = add_occurrences(ctx, group_id, times)
    with ctx.db.write() as session:
        group = lock_group(session, group_id)
        assert group is not None
        if group.status == 2:
            on_ignored_occurrences(
                session, ctx, group, hour_counts=touched, detection_times=times, now=ctx.now()
            )
        render_queued(session)
        session.commit()


def group_row(ctx: AppContext, group_id: int) -> Group:
    """The issue row as stored now."""
    with ctx.db.read() as session:
        group = session.get(Group, group_id)
        assert group is not None
        session.expunge(group)
        return group
