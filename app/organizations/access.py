"""Tenancy checks shared by every package that reads or writes a project's data."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Forbidden, NotFound
from app.models import Project
from app.schemas import MAX_ID


def project_for(session: Session, principal: Principal, project_id: int) -> Project:
    """The project, if the caller may use it: unknown → 404 ``project_not_found``, else 403."""
    # An id outside the columns' 64-bit range cannot exist (and would not bind on SQLite).
    project = session.get(Project, project_id) if 1 <= project_id <= MAX_ID else None
    if project is None:
        raise NotFound(f"project {project_id} not found", code="project_not_found")
    if not principal.may_access(project.organization_id, project.id):
        raise Forbidden(f"this key may not use project {project_id}")
    return project


def visible_project_ids(session: Session, principal: Principal) -> list[int] | None:
    """Projects the caller may read: None means every project (admin)."""
    if principal.is_admin:
        return None
    stmt = select(Project.id).where(Project.organization_id == principal.organization_id)
    ids = list(session.scalars(stmt))
    if principal.project_ids is not None:
        ids = [i for i in ids if i in principal.project_ids]
    return ids
