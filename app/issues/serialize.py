"""Turning issue rows into answers (used by the stream, triage and webhooks alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.issue_types.registry import PRIORITY_NAMES, Registry
from app.issues.schemas import ActivityOut, EvidenceOut, IssueOut, LatestOccurrenceOut
from app.issues.status import status_name, substatus_name
from app.models import Activity, Group, Occurrence, Project


def etag(group: Group) -> str:
    """The ETag of an issue answer: changes whenever the issue does."""
    return f'"{group.id}-{group.version}"'


def latest_occurrence_out(occ: Occurrence | None) -> LatestOccurrenceOut | None:
    """The latest-occurrence part of an issue answer."""
    if occ is None:
        return None
    evidence = [
        EvidenceOut(
            name=str(e.get("name", "")),
            value=str(e.get("value", "")),
            important=bool(e.get("important", False)),
        )
        for e in occ.evidence_display or []
    ]
    important = next((e for e in evidence if e.important), None)
    return LatestOccurrenceOut(
        id=occ.id,
        event_id=occ.event_id,
        detection_time=occ.detection_time,
        received_at=occ.received_at,
        level=occ.level,
        resource_id=occ.resource_id,
        evidence_data=occ.evidence_data or {},
        evidence_display=evidence,
        important_evidence=important,
    )


def issue_out(
    group: Group, *, project_slug: str, registry: Registry, latest: Occurrence | None
) -> IssueOut:
    """An issue row as the API shows it."""
    issue_type = registry.get(group.type_id)
    category_id = issue_type.category_id if issue_type else 0
    category = registry.category(category_id) if issue_type else None
    return IssueOut(
        id=group.id,
        short_id=f"{project_slug.upper()}-{group.short_id}",
        project_id=group.project_id,
        type_id=group.type_id,
        type=issue_type.slug if issue_type else f"unknown-{group.type_id}",
        category=category.slug if category else "unknown",
        category_id=category_id,
        title=group.title,
        subtitle=group.subtitle,
        culprit=group.culprit,
        level=group.level,
        status=status_name(group.status),
        substatus=substatus_name(group.substatus),
        priority=PRIORITY_NAMES.get(group.priority, str(group.priority)),
        priority_locked=group.priority_locked,
        first_seen=group.first_seen,
        last_seen=group.last_seen,
        times_seen=group.times_seen,
        resolved_at=group.resolved_at,
        assignee=group.assignee,
        ignore_until=group.ignore_until,
        latest_occurrence=latest_occurrence_out(latest),
    )


def issues_out(
    session: Session, groups: list[Group], registry: Registry, *, with_latest: bool = True
) -> list[IssueOut]:
    """Many issue rows as answers, fetching their projects and latest occurrences in two queries.

    ``with_latest=False`` leaves ``latest_occurrence`` out (null) and skips its query, for
    readers that show no evidence (the console's stream rows).
    """
    if not groups:
        return []
    project_ids = {g.project_id for g in groups}
    slugs = dict(
        session.execute(select(Project.id, Project.slug).where(Project.id.in_(project_ids))).all()
    )
    keys = [
        (g.project_id, g.latest_occurrence_id)
        for g in groups
        if g.latest_occurrence_id and with_latest
    ]
    latest: dict[tuple[int, str], Occurrence] = {}
    if keys:
        ids = {k[1] for k in keys}
        for occ in session.scalars(
            select(Occurrence).where(Occurrence.project_id.in_(project_ids), Occurrence.id.in_(ids))
        ):
            latest[(occ.project_id, occ.id)] = occ
    return [
        issue_out(
            g,
            project_slug=slugs.get(g.project_id, "P"),
            registry=registry,
            latest=latest.get((g.project_id, g.latest_occurrence_id or "")),
        )
        for g in groups
    ]


def issue_payload(session: Session, group: Group, registry: Registry) -> dict[str, Any]:
    """One issue as a JSON-ready dict (webhook bodies, status-change answers)."""
    return issues_out(session, [group], registry)[0].model_dump(mode="json")


def activity_out(row: Activity) -> ActivityOut:
    """An activity row as the API shows it."""
    return ActivityOut(
        id=row.id,
        issue_id=row.group_id,
        type=row.type,
        data=row.data or {},
        actor=row.actor,
        created_at=row.created_at,
    )
