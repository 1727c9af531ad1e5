"""Use cases of the issue stream: list, read one (and find one the caller may see)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.context import AppContext
from app.errors import InvalidPayload, NotFound
from app.issue_types.flags import FlagKind
from app.issue_types.registry import IssueType, parse_priority
from app.issue_types.service import refresh_if_stale, type_ids_for_slugs
from app.issues import cursor as cursors
from app.issues.schemas import IssueOut, IssuePage
from app.issues.serialize import issues_out
from app.issues.status import LEVELS, parse_status, parse_substatus
from app.issues.write import lock_group
from app.models import Group, Organization, Project, RolloutFlag
from app.organizations.access import project_for, visible_project_ids
from app.rollout.rules import Stage, flag_on
from app.rollout.service import is_enabled
from app.storable import MAX_INT, MIN_INT

SORTS = {
    "last_seen": Group.last_seen,
    "first_seen": Group.first_seen,
    "times_seen": Group.times_seen,
    "priority": Group.priority,
}


@dataclass(frozen=True)
class IssueFilters:
    """What ``GET /issues`` was asked for (raw query values)."""

    types: list[str] | None = None
    categories: list[str] | None = None
    projects: list[int] | None = None
    statuses: list[str] | None = None
    substatuses: list[str] | None = None
    priorities: list[str] | None = None
    levels: list[str] | None = None
    query: str | None = None
    first_seen_after: datetime | None = None
    first_seen_before: datetime | None = None
    last_seen_after: datetime | None = None
    last_seen_before: datetime | None = None
    sort: str = "last_seen"
    limit: int = 25
    cursor: str | None = None
    include_hidden: bool = False
    # Not an API parameter: callers that show no evidence (the console's stream) skip the
    # latest occurrences' query.
    with_latest_occurrence: bool = True


def _parse_all(values: list[str] | None, parse: Any, field: str) -> list[int] | None:
    if not values:
        return None
    out = []
    for value in values:
        try:
            out.append(parse(value))
        except ValueError as exc:
            raise InvalidPayload(str(exc), details={"field": field}) from None
    return out


def _unreleased_types(ctx: AppContext) -> list[IssueType]:
    return [t for t in ctx.registry.types() if not t.released]


def _visibility_condition(
    ctx: AppContext,
    session: Session,
    principal: Principal,
    include_hidden: bool,
    type_ids: set[int] | None,
) -> ColumnElement[bool]:
    """Leave out issues of types whose visible flag is off for the issue's organization.

    ``type_ids``: the types the query is already limited to (None: all). Only unreleased types
    among them need a condition, so a search for released types reads no flags.
    """
    unreleased = [t for t in _unreleased_types(ctx) if type_ids is None or t.type_id in type_ids]
    if not unreleased or (principal.is_admin and include_hidden):
        return true()
    flags = {
        r.type_id: (Stage(r.stage), list(r.organizations or []))
        for r in session.scalars(
            select(RolloutFlag).where(RolloutFlag.kind == FlagKind.VISIBLE.value)
        )
    }
    if not principal.is_admin:
        assert principal.organization_id is not None
        org = session.get(Organization, principal.organization_id)
        early = bool(org and org.early_adopter)
        hidden = [
            t.type_id
            for t in unreleased
            if not flag_on(*flags.get(t.type_id, (Stage.OFF, [])), principal.organization_id, early)
        ]
        return Group.type_id.not_in(hidden) if hidden else true()
    # Admin across organizations: decide per issue from its project's organization.
    conditions: list[ColumnElement[bool]] = []
    for t in unreleased:
        stage, orgs = flags.get(t.type_id, (Stage.OFF, []))
        if stage is Stage.GA:
            continue
        if stage is Stage.OFF:
            visible: ColumnElement[bool] = false()
        else:
            org_ids = select(Project.id).where(Project.organization_id.in_(orgs or [-1]))
            visible = Group.project_id.in_(org_ids)
            if stage is Stage.EA:
                early_projects = (
                    select(Project.id)
                    .join(Organization, Organization.id == Project.organization_id)
                    .where(Organization.early_adopter.is_(True))
                )
                visible = or_(visible, Group.project_id.in_(early_projects))
        conditions.append(or_(Group.type_id != t.type_id, visible))
    return and_(*conditions) if conditions else true()


def list_issues(
    ctx: AppContext, *, principal: Principal, filters: IssueFilters
) -> tuple[IssuePage, str | None]:
    """A page of the issue stream, and the cursor of the next page."""
    if filters.sort not in SORTS:
        raise InvalidPayload(
            "sort must be last_seen, first_seen, times_seen or priority", details={"field": "sort"}
        )
    statuses = _parse_all(filters.statuses, parse_status, "status")
    substatuses = _parse_all(filters.substatuses, parse_substatus, "substatus")
    priorities = _parse_all(filters.priorities, parse_priority, "priority")
    if filters.levels:
        bad = [lv for lv in filters.levels if lv not in LEVELS]
        if bad:
            raise InvalidPayload(f"unknown level {bad[0]!r}", details={"field": "level"})
    with ctx.db.read() as session:
        refresh_if_stale(ctx, session)
        stmt = select(Group)
        type_ids: set[int] | None = None
        if filters.types:
            type_ids = type_ids_for_slugs(ctx.registry, filters.types)
        if filters.categories:
            cat_types: set[int] = set()
            for ref in filters.categories:
                category = ctx.registry.category(ref)
                if category is None:
                    raise InvalidPayload(
                        f"unknown category {ref!r}",
                        code="unknown_category",
                        details={"field": "category"},
                    )
                cat_types.update(t.type_id for t in ctx.registry.types_in_category(category.id))
            type_ids = cat_types if type_ids is None else type_ids & cat_types
        if type_ids is not None:
            stmt = stmt.where(Group.type_id.in_(sorted(type_ids)))
        else:
            excluded = [t.type_id for t in ctx.registry.types() if not t.in_default_search]
            if excluded:
                stmt = stmt.where(Group.type_id.not_in(excluded))
        if filters.projects:
            for project_id in filters.projects:
                project_for(session, principal, project_id)
            stmt = stmt.where(Group.project_id.in_(filters.projects))
        else:
            allowed = visible_project_ids(session, principal)
            if allowed is not None:
                stmt = stmt.where(Group.project_id.in_(allowed))
        stmt = stmt.where(
            _visibility_condition(ctx, session, principal, filters.include_hidden, type_ids)
        )
        if statuses:
            stmt = stmt.where(Group.status.in_(statuses))
        if substatuses:
            stmt = stmt.where(Group.substatus.in_(substatuses))
        if priorities:
            stmt = stmt.where(Group.priority.in_(priorities))
        if filters.levels:
            stmt = stmt.where(Group.level.in_(filters.levels))
        if filters.query:
            q = filters.query
            stmt = stmt.where(
                or_(
                    Group.title.icontains(q, autoescape=True),
                    Group.subtitle.icontains(q, autoescape=True),
                    Group.culprit.icontains(q, autoescape=True),
                    _short_id_condition(session, q),
                )
            )
        for column, bound, after in (
            (Group.first_seen, filters.first_seen_after, True),
            (Group.first_seen, filters.first_seen_before, False),
            (Group.last_seen, filters.last_seen_after, True),
            (Group.last_seen, filters.last_seen_before, False),
        ):
            if bound is not None:
                stmt = stmt.where(column > bound if after else column < bound)
        key = SORTS[filters.sort]
        if filters.cursor:
            value, last_id = _stream_position(filters.cursor, filters.sort)
            stmt = stmt.where(or_(key < value, and_(key == value, Group.id < last_id)))
        rows = list(
            session.scalars(stmt.order_by(key.desc(), Group.id.desc()).limit(filters.limit + 1))
        )
        more = len(rows) > filters.limit
        rows = rows[: filters.limit]
        next_cursor = None
        if more and rows:
            last = rows[-1]
            next_cursor = cursors.encode(filters.sort, getattr(last, key.key), last.id)
        data = issues_out(session, rows, ctx.registry, with_latest=filters.with_latest_occurrence)
        return IssuePage(data=data, next_cursor=next_cursor), next_cursor


_SHORT_ID = re.compile(r"\s*([A-Za-z0-9_-]{1,64})-([0-9]{1,18})\s*")


def _short_id_condition(session: Session, query: str) -> ColumnElement[bool]:
    """Issues whose short id (``<PROJECT-SLUG>-<n>``, any case) is the query; false otherwise.

    Tenancy stays with the stream's own project condition: this only names candidates.
    """
    match = _SHORT_ID.fullmatch(query)
    if match is None:
        return false()
    slug, number = match.group(1).lower(), int(match.group(2))
    projects = list(session.scalars(select(Project.id).where(Project.slug == slug)))
    if not projects:
        return false()
    return and_(Group.project_id.in_(projects), Group.short_id == number)


def aware(value: Any) -> bool:
    """Whether a decoded cursor value is a timezone-aware datetime."""
    return isinstance(value, datetime) and value.tzinfo is not None


def _bigint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and MIN_INT <= value <= MAX_INT


def _stream_position(cursor: str, sort: str) -> tuple[Any, int]:
    """The (sort value, issue id) of a stream cursor, checked to fit the sort column (else 422)."""
    try:
        value, last_id = cursors.decode(cursor, sort)
    except cursors.BadCursor as exc:
        raise InvalidPayload(str(exc), details={"field": "cursor"}) from None
    # A hand-made cursor may carry any JSON: only values the column can compare with are used.
    fits = aware(value) if sort in ("last_seen", "first_seen") else _bigint(value)
    if not (fits and _bigint(last_id)):
        raise InvalidPayload("malformed cursor", details={"field": "cursor"})
    return value, last_id


def load_visible_group(
    ctx: AppContext,
    session: Session,
    principal: Principal,
    issue_id: int,
    *,
    include_hidden: bool = False,
    lock: bool = False,
) -> Group:
    """An issue the caller may see, else 404 ``issue_not_found`` (other tenants included).

    A type whose visible flag is off for the issue's organization hides it, except from the
    admin with ``include_hidden``. ``lock`` takes the row lock for a change.
    """
    refresh_if_stale(ctx, session)
    group = lock_group(session, issue_id) if lock else session.get(Group, issue_id)
    missing = NotFound(f"issue {issue_id} not found", code="issue_not_found")
    if group is None:
        raise missing
    project = session.get(Project, group.project_id)
    if project is None or not principal.may_access(project.organization_id, project.id):
        raise missing
    issue_type = ctx.registry.get(group.type_id)
    if issue_type is None or (principal.is_admin and include_hidden):
        return group
    org = session.get(Organization, project.organization_id)
    if org is None or not is_enabled(
        ctx, session, issue_type, FlagKind.VISIBLE, org.id, org.early_adopter
    ):
        raise missing
    return group


def get_issue(
    ctx: AppContext, *, principal: Principal, issue_id: int, include_hidden: bool = False
) -> tuple[IssueOut, Group]:
    """One issue as the API shows it, with its row (for the ETag)."""
    with ctx.db.read() as session:
        group = load_visible_group(ctx, session, principal, issue_id, include_hidden=include_hidden)
        return issues_out(session, [group], ctx.registry)[0], group
