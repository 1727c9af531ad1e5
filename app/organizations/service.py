"""Use cases of the admin API for organizations, projects and API keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from app.auth.principal import hash_token, new_token
from app.context import AppContext
from app.errors import Conflict, InvalidPayload, NotFound
from app.models import ApiKey, Organization, Project
from app.organizations.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    OrganizationIn,
    OrganizationOut,
    ProjectIn,
    ProjectOut,
)
from app.schemas import MAX_ID

# Allocating max(id) + 1 can collide with a concurrent create; such a loser simply tries again.
_ID_ATTEMPTS = 5

T = TypeVar("T")


def _next_id(session: Session, model: type[Organization] | type[Project]) -> int:
    """The next free id after the largest one in use (sequences are not used: ids may be given).

    Once the largest possible id is taken, the smallest free id is used instead.
    """
    largest = int(session.scalar(select(func.max(model.id))) or 0)
    if largest < MAX_ID:
        return largest + 1
    if session.get(model, 1) is None:
        return 1
    successor = aliased(model)
    gap = session.scalar(
        select(func.min(model.id + 1)).where(
            model.id < MAX_ID,
            ~select(successor.id).where(successor.id == model.id + 1).exists(),
        )
    )
    if gap is None:
        raise Conflict("every id is taken", code="id_space_exhausted")
    return int(gap)


def _insert_with_id(
    ctx: AppContext,
    *,
    explicit_id: int | None,
    model: type[Organization] | type[Project],
    build: Callable[[Session], Organization | Project],
    conflict: Callable[[], Conflict],
    out: Callable[[Any], T],
) -> T:
    """Insert one row under a given or freshly allocated id; losing an allocation race retries."""
    for attempt in range(_ID_ATTEMPTS):
        with ctx.db.write() as session:
            row = build(session)
            row.id = explicit_id if explicit_id is not None else _next_id(session, model)
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                if explicit_id is None and attempt + 1 < _ID_ATTEMPTS:
                    continue
                raise conflict() from None
            return out(row)
    raise AssertionError("unreachable")  # pragma: no cover


def _immutable(field: str, current: int, changes: dict[str, Any]) -> None:
    if field in changes and changes[field] != current:
        raise InvalidPayload(
            f"'{field}' cannot be changed",
            code="immutable_field",
            details=[{"field": field, "message": "immutable field"}],
        )


# Organizations


def _organization(session: Session, organization_id: int) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"organization {organization_id} not found", code="organization_not_found")
    return org


def _organization_exists(detail: str) -> Conflict:
    return Conflict(detail, code="organization_exists")


def _check_organization_free(session: Session, *, id: int | None, slug: str | None) -> None:
    if id is not None and session.get(Organization, id) is not None:
        raise _organization_exists(f"organization {id} already exists")
    if slug is not None:
        taken = session.scalar(select(Organization.id).where(Organization.slug == slug))
        if taken is not None:
            raise _organization_exists(f"organization slug {slug!r} is taken")


def list_organizations(*, ctx: AppContext) -> list[OrganizationOut]:
    """Every organization, by id."""
    with ctx.db.read() as session:
        rows = session.scalars(select(Organization).order_by(Organization.id))
        return [OrganizationOut.model_validate(r) for r in rows]


def get_organization(*, ctx: AppContext, organization_id: int) -> OrganizationOut:
    """One organization (404 ``organization_not_found``)."""
    with ctx.db.read() as session:
        return OrganizationOut.model_validate(_organization(session, organization_id))


def create_organization(*, ctx: AppContext, data: OrganizationIn) -> OrganizationOut:
    """Create an organization under the given id or the next free one."""

    def build(session: Session) -> Organization:
        _check_organization_free(session, id=data.id, slug=data.slug)
        return Organization(
            slug=data.slug,
            name=data.name,
            early_adopter=data.early_adopter,
            created_at=ctx.now(),
        )

    return _insert_with_id(
        ctx,
        explicit_id=data.id,
        model=Organization,
        build=build,
        conflict=lambda: _organization_exists("organization id or slug already exists"),
        out=OrganizationOut.model_validate,
    )


def update_organization(
    *, ctx: AppContext, organization_id: int, changes: dict[str, Any]
) -> OrganizationOut:
    """Change an organization's slug, name or early-adopter mark (its id is immutable)."""
    with ctx.db.write() as session:
        org = _organization(session, organization_id)
        _immutable("id", org.id, changes)
        if "slug" in changes and changes["slug"] != org.slug:
            _check_organization_free(session, id=None, slug=changes["slug"])
        for field in ("slug", "name", "early_adopter"):
            if field in changes:
                setattr(org, field, changes[field])
        try:
            session.commit()
        except IntegrityError:
            raise _organization_exists("organization slug is taken") from None
        return OrganizationOut.model_validate(org)


# Projects


def _project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found", code="project_not_found")
    return project


def _project_exists(detail: str) -> Conflict:
    return Conflict(detail, code="project_exists")


def _check_project_free(
    session: Session, *, id: int | None, organization_id: int, slug: str | None
) -> None:
    if id is not None and session.get(Project, id) is not None:
        raise _project_exists(f"project {id} already exists")
    if slug is not None:
        stmt = select(Project.id).where(
            Project.organization_id == organization_id, Project.slug == slug
        )
        if session.scalar(stmt) is not None:
            raise _project_exists(f"project slug {slug!r} is taken in this organization")


def list_projects(*, ctx: AppContext, organization_id: int | None = None) -> list[ProjectOut]:
    """Every project (optionally of one organization), by id."""
    with ctx.db.read() as session:
        stmt = select(Project).order_by(Project.id)
        if organization_id is not None:
            stmt = stmt.where(Project.organization_id == organization_id)
        return [ProjectOut.model_validate(r) for r in session.scalars(stmt)]


def get_project(*, ctx: AppContext, project_id: int) -> ProjectOut:
    """One project (404 ``project_not_found``)."""
    with ctx.db.read() as session:
        return ProjectOut.model_validate(_project(session, project_id))


def create_project(*, ctx: AppContext, data: ProjectIn) -> ProjectOut:
    """Create a project of an existing organization under the given id or the next free one."""

    def build(session: Session) -> Project:
        _organization(session, data.organization_id)
        _check_project_free(
            session, id=data.id, organization_id=data.organization_id, slug=data.slug
        )
        return Project(
            organization_id=data.organization_id,
            slug=data.slug,
            name=data.name,
            resolve_age_hours=data.resolve_age_hours,
            retention_days=(
                data.retention_days
                if data.retention_days is not None
                else ctx.settings.default_retention_days
            ),
            next_short_id=1,
            created_at=ctx.now(),
        )

    return _insert_with_id(
        ctx,
        explicit_id=data.id,
        model=Project,
        build=build,
        conflict=lambda: _project_exists("project id or slug already exists"),
        out=ProjectOut.model_validate,
    )


def update_project(*, ctx: AppContext, project_id: int, changes: dict[str, Any]) -> ProjectOut:
    """Change a project's slug, name, auto-resolve age or retention (id and organization are
    immutable)."""
    with ctx.db.write() as session:
        project = _project(session, project_id)
        _immutable("id", project.id, changes)
        _immutable("organization_id", project.organization_id, changes)
        if "slug" in changes and changes["slug"] != project.slug:
            _check_project_free(
                session, id=None, organization_id=project.organization_id, slug=changes["slug"]
            )
        for field in ("slug", "name", "resolve_age_hours", "retention_days"):
            if field in changes:
                setattr(project, field, changes[field])
        try:
            session.commit()
        except IntegrityError:
            raise _project_exists("project slug is taken in this organization") from None
        return ProjectOut.model_validate(project)


# API keys


def create_api_key(*, ctx: AppContext, organization_id: int, data: ApiKeyIn) -> ApiKeyCreated:
    """Create a key of an organization; its token is returned here and never again."""
    token = new_token()
    with ctx.db.write() as session:
        _organization(session, organization_id)
        if data.project_ids is not None:
            stmt = select(Project.id).where(
                Project.organization_id == organization_id, Project.id.in_(data.project_ids)
            )
            foreign = sorted(set(data.project_ids) - set(session.scalars(stmt)))
            if foreign:
                raise InvalidPayload(
                    f"projects {foreign} do not belong to organization {organization_id}",
                    details=[{"field": "project_ids", "message": "not in this organization"}],
                )
        key = ApiKey(
            organization_id=organization_id,
            name=data.name,
            token_hash=hash_token(token),
            scopes=list(data.scopes),
            project_ids=data.project_ids,
            created_at=ctx.now(),
        )
        session.add(key)
        session.commit()
        return ApiKeyCreated(token=token, **ApiKeyOut.model_validate(key).model_dump())


def list_api_keys(*, ctx: AppContext, organization_id: int) -> list[ApiKeyOut]:
    """An organization's keys, revoked ones included, without tokens."""
    with ctx.db.read() as session:
        _organization(session, organization_id)
        stmt = select(ApiKey).where(ApiKey.organization_id == organization_id)
        return [ApiKeyOut.model_validate(k) for k in session.scalars(stmt.order_by(ApiKey.id))]


def revoke_api_key(*, ctx: AppContext, key_id: int) -> None:
    """Revoke a key (idempotent); it answers 401 from now on."""
    with ctx.db.write() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"API key {key_id} not found", code="api_key_not_found")
        if key.revoked_at is None:
            key.revoked_at = ctx.now()
        session.commit()
    # Other processes drop their cached lookups within ``auth_cache_seconds``.
    ctx.key_cache.clear()
