"""Read use cases of occurrences: one stored occurrence, an issue's occurrences, pending windows."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.context import AppContext
from app.errors import InvalidPayload, NotFound
from app.issue_types.registry import PRIORITY_NAMES
from app.issue_types.service import refresh_if_stale, type_ids_for_slugs
from app.issues import cursor as cursors
from app.issues.service import aware, load_visible_group
from app.models import Event, Group, Occurrence, PendingWindow, Project
from app.occurrences.schemas import (
    OccurrenceOut,
    OccurrencePage,
    PendingOut,
    PendingPage,
    StoredEvidence,
)
from app.occurrences.validation import PayloadError, normalize_uuid
from app.organizations.access import project_for, visible_project_ids

_OCCURRENCE_ID = re.compile(r"[0-9a-f]{32}")


def _stored_occurrence_out(ctx: AppContext, occ: Occurrence, event: Event | None) -> OccurrenceOut:
    issue_type = ctx.registry.get(occ.type_id)
    return OccurrenceOut(
        id=occ.id,
        project_id=occ.project_id,
        issue_id=occ.group_id,
        pending=occ.pending_hash is not None,
        type_id=occ.type_id,
        type=issue_type.slug if issue_type else None,
        event_id=occ.event_id,
        fingerprint=list(occ.fingerprint),
        issue_title=occ.issue_title,
        subtitle=occ.subtitle,
        culprit=occ.culprit,
        resource_id=occ.resource_id,
        evidence_data=occ.evidence_data or {},
        evidence_display=[StoredEvidence(**e) for e in occ.evidence_display or []],
        detection_time=occ.detection_time,
        received_at=occ.received_at,
        level=occ.level,
        priority=PRIORITY_NAMES.get(occ.priority, str(occ.priority)),
        assignee=occ.assignee,
        event=event.data if event is not None else None,
    )


def get_occurrence(
    ctx: AppContext, *, principal: Principal, project_id: int, occurrence_id: str
) -> OccurrenceOut:
    """A stored occurrence of a project the caller may read (other tenants' → 404)."""
    try:
        occ_id = normalize_uuid(occurrence_id, "occurrence_id")
    except PayloadError:
        raise NotFound("occurrence not found", code="occurrence_not_found") from None
    with ctx.db.read() as session:
        project = session.get(Project, project_id)
        if project is None or not principal.may_access(project.organization_id, project.id):
            raise NotFound("occurrence not found", code="occurrence_not_found")
        occ = session.get(Occurrence, (project_id, occ_id))
        if occ is None:
            raise NotFound("occurrence not found", code="occurrence_not_found")
        event = session.get(Event, (project_id, occ.event_id))
        return _stored_occurrence_out(ctx, occ, event)


def occurrences_page(
    ctx: AppContext,
    session: Session,
    *,
    group: Group,
    limit: int,
    cursor: tuple[datetime, str] | None,
) -> tuple[list[OccurrenceOut], tuple[datetime, str] | None]:
    """A page of an issue's occurrences, newest first (keyset on detection time and id)."""
    stmt = select(Occurrence).where(Occurrence.group_id == group.id)
    if cursor is not None:
        at, occ_id = cursor
        stmt = stmt.where(
            (Occurrence.detection_time < at)
            | ((Occurrence.detection_time == at) & (Occurrence.id < occ_id))
        )
    rows = list(
        session.scalars(
            stmt.order_by(Occurrence.detection_time.desc(), Occurrence.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    events = {
        e.event_id: e
        for e in session.scalars(
            select(Event).where(
                Event.project_id == group.project_id,
                Event.event_id.in_({r.event_id for r in rows}),
            )
        )
    }
    out = [_stored_occurrence_out(ctx, r, events.get(r.event_id)) for r in rows]
    next_cursor = (rows[-1].detection_time, rows[-1].id) if more and rows else None
    return out, next_cursor


def list_pending(
    ctx: AppContext,
    *,
    principal: Principal,
    projects: list[int] | None,
    types: list[str] | None,
    limit: int,
) -> PendingPage:
    """Open noise windows the caller may see."""
    with ctx.db.read() as session:
        refresh_if_stale(ctx, session)
        stmt = select(PendingWindow)
        allowed = visible_project_ids(session, principal)
        if projects:
            for project_id in projects:
                project_for(session, principal, project_id)
            stmt = stmt.where(PendingWindow.project_id.in_(projects))
        elif allowed is not None:
            stmt = stmt.where(PendingWindow.project_id.in_(allowed))
        if types:
            stmt = stmt.where(PendingWindow.type_id.in_(type_ids_for_slugs(ctx.registry, types)))
        rows = session.scalars(
            stmt.order_by(PendingWindow.window_started_at.desc()).limit(limit)
        ).all()
        data = []
        for row in rows:
            issue_type = ctx.registry.get(row.type_id)
            data.append(
                PendingOut(
                    project_id=row.project_id,
                    type_id=row.type_id,
                    type=issue_type.slug if issue_type else None,
                    fingerprint=row.fingerprint,
                    hash=row.hash,
                    count=row.count,
                    threshold=row.threshold,
                    window_started_at=row.window_started_at,
                    window_ends_at=row.window_ends_at,
                )
            )
        return PendingPage(data=data)


def list_issue_occurrences(
    ctx: AppContext, *, principal: Principal, issue_id: int, limit: int, cursor: str | None
) -> OccurrencePage:
    """An issue's occurrences, newest first."""
    position: tuple[datetime, str] | None = None
    if cursor:
        try:
            value, occ_id = cursors.decode(cursor, "detection_time")
        except cursors.BadCursor as exc:
            raise InvalidPayload(str(exc), details={"field": "cursor"}) from None
        if not (aware(value) and isinstance(occ_id, str) and _OCCURRENCE_ID.fullmatch(occ_id)):
            raise InvalidPayload("malformed cursor", details={"field": "cursor"})
        position = (value, occ_id)
    with ctx.db.read() as session:
        group = load_visible_group(ctx, session, principal, issue_id)
        data, nxt = occurrences_page(ctx, session, group=group, limit=limit, cursor=position)
        next_cursor = cursors.encode("detection_time", nxt[0], nxt[1]) if nxt else None
        return OccurrencePage(data=data, next_cursor=next_cursor)
