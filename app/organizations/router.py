"""Admin API: organizations, projects and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import AdminDep
from app.dependencies import CtxDep
from app.errors import error_responses
from app.organizations import service
from app.organizations.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    OrganizationIn,
    OrganizationOut,
    OrganizationPatch,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
)
from app.schemas import MAX_ID, IdPath, Int32IdPath

router = APIRouter(prefix="/admin", tags=["admin: organizations"])

AUTH = (401, 403)


@router.get(
    "/organizations",
    summary="List organizations",
    response_model=list[OrganizationOut],
    responses=error_responses(*AUTH),
)
def list_organizations(ctx: CtxDep, _: AdminDep) -> list[OrganizationOut]:
    """Every organization, by id."""
    return service.list_organizations(ctx=ctx)


@router.post(
    "/organizations",
    status_code=201,
    summary="Create an organization",
    response_model=OrganizationOut,
    responses=error_responses(*AUTH, 409, 422),
)
def create_organization(ctx: CtxDep, _: AdminDep, body: OrganizationIn) -> OrganizationOut:
    """Create an organization; duplicate id or slug → 409 `organization_exists`."""
    return service.create_organization(ctx=ctx, data=body)


@router.get(
    "/organizations/{organization_id}",
    summary="Get an organization",
    response_model=OrganizationOut,
    responses=error_responses(*AUTH, 404),
)
def get_organization(ctx: CtxDep, _: AdminDep, organization_id: IdPath) -> OrganizationOut:
    """One organization; unknown → 404 `organization_not_found`."""
    return service.get_organization(ctx=ctx, organization_id=organization_id)


@router.patch(
    "/organizations/{organization_id}",
    summary="Change an organization",
    response_model=OrganizationOut,
    responses=error_responses(*AUTH, 404, 409, 422),
)
def update_organization(
    ctx: CtxDep, _: AdminDep, organization_id: IdPath, body: OrganizationPatch
) -> OrganizationOut:
    """Change slug, name or early-adopter mark; a different `id` → 422 `immutable_field`."""
    return service.update_organization(
        ctx=ctx, organization_id=organization_id, changes=body.changes()
    )


@router.get(
    "/projects",
    summary="List projects",
    response_model=list[ProjectOut],
    responses=error_responses(*AUTH, 422),
)
def list_projects(
    ctx: CtxDep,
    _: AdminDep,
    organization_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only the projects of this organization.")
    ] = None,
) -> list[ProjectOut]:
    """Every project, by id."""
    return service.list_projects(ctx=ctx, organization_id=organization_id)


@router.post(
    "/projects",
    status_code=201,
    summary="Create a project",
    response_model=ProjectOut,
    responses=error_responses(*AUTH, 404, 409, 422),
)
def create_project(ctx: CtxDep, _: AdminDep, body: ProjectIn) -> ProjectOut:
    """Create a project; duplicate → 409 `project_exists`, unknown organization → 404."""
    return service.create_project(ctx=ctx, data=body)


@router.get(
    "/projects/{project_id}",
    summary="Get a project",
    response_model=ProjectOut,
    responses=error_responses(*AUTH, 404),
)
def get_project(ctx: CtxDep, _: AdminDep, project_id: IdPath) -> ProjectOut:
    """One project; unknown → 404 `project_not_found`."""
    return service.get_project(ctx=ctx, project_id=project_id)


@router.patch(
    "/projects/{project_id}",
    summary="Change a project",
    response_model=ProjectOut,
    responses=error_responses(*AUTH, 404, 409, 422),
)
def update_project(ctx: CtxDep, _: AdminDep, project_id: IdPath, body: ProjectPatch) -> ProjectOut:
    """Change slug, name or auto-resolve age; `id`/`organization_id` → 422 `immutable_field`."""
    return service.update_project(ctx=ctx, project_id=project_id, changes=body.changes())


@router.post(
    "/organizations/{organization_id}/keys",
    status_code=201,
    summary="Create an API key",
    response_model=ApiKeyCreated,
    responses=error_responses(*AUTH, 404, 422),
)
def create_api_key(
    ctx: CtxDep, _: AdminDep, organization_id: IdPath, body: ApiKeyIn
) -> ApiKeyCreated:
    """Create a key with scopes and optional project limits; the token is shown only here."""
    return service.create_api_key(ctx=ctx, organization_id=organization_id, data=body)


@router.get(
    "/organizations/{organization_id}/keys",
    summary="List API keys",
    response_model=list[ApiKeyOut],
    responses=error_responses(*AUTH, 404),
)
def list_api_keys(ctx: CtxDep, _: AdminDep, organization_id: IdPath) -> list[ApiKeyOut]:
    """An organization's keys (revoked ones included), without tokens."""
    return service.list_api_keys(ctx=ctx, organization_id=organization_id)


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    summary="Revoke an API key",
    response_class=Response,
    responses=error_responses(*AUTH, 404),
)
def revoke_api_key(ctx: CtxDep, _: AdminDep, key_id: Int32IdPath) -> Response:
    """Revoke a key; it answers 401 `unauthenticated` from then on."""
    service.revoke_api_key(ctx=ctx, key_id=key_id)
    return Response(status_code=204)
