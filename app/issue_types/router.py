"""Admin API: categories and issue types."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import AdminDep
from app.dependencies import CtxDep
from app.errors import error_responses
from app.issue_types import service
from app.issue_types.schemas import (
    CategoryIn,
    CategoryOut,
    IssueTypeIn,
    IssueTypeOut,
    IssueTypePatch,
)

router = APIRouter(prefix="/admin", tags=["admin: issue types"])

AUTH = (401, 403)


@router.get(
    "/categories",
    summary="List categories",
    response_model=list[CategoryOut],
    responses=error_responses(*AUTH),
)
def list_categories(ctx: CtxDep, _: AdminDep) -> list[CategoryOut]:
    """Every category, built-in and registered, by id."""
    return service.list_categories(ctx=ctx)


@router.post(
    "/categories",
    status_code=201,
    summary="Register a category",
    response_model=CategoryOut,
    responses=error_responses(*AUTH, 409, 422),
)
def create_category(ctx: CtxDep, _: AdminDep, body: CategoryIn) -> CategoryOut:
    """Register a category; an id or slug in use (built-ins too) → 409 `category_exists`."""
    return service.create_category(ctx=ctx, data=body)


@router.get(
    "/issue-types",
    summary="List issue types",
    response_model=list[IssueTypeOut],
    responses=error_responses(*AUTH, 422),
)
def list_issue_types(
    ctx: CtxDep,
    _: AdminDep,
    category: Annotated[str | None, Query(description="Only this category (id or slug).")] = None,
) -> list[IssueTypeOut]:
    """Every registered type (built-in, code, plugin, API) by type_id."""
    return service.list_issue_types(ctx=ctx, category=category)


@router.post(
    "/issue-types",
    status_code=201,
    summary="Register an issue type",
    response_model=IssueTypeOut,
    responses=error_responses(*AUTH, 409, 422),
)
def create_issue_type(ctx: CtxDep, _: AdminDep, body: IssueTypeIn) -> IssueTypeOut:
    """Register a type; duplicate type_id or slug → 409 `issue_type_exists`."""
    return service.create_issue_type(ctx=ctx, data=body)


@router.get(
    "/issue-types/{slug}",
    summary="Get an issue type",
    response_model=IssueTypeOut,
    responses=error_responses(*AUTH, 404),
)
def get_issue_type(ctx: CtxDep, _: AdminDep, slug: str) -> IssueTypeOut:
    """One type by slug; unknown → 404 `issue_type_not_found`."""
    return service.get_issue_type(ctx=ctx, slug=slug)


@router.patch(
    "/issue-types/{slug}",
    summary="Change an issue type",
    response_model=IssueTypeOut,
    responses=error_responses(*AUTH, 404, 409, 422),
)
def update_issue_type(ctx: CtxDep, _: AdminDep, slug: str, body: IssueTypePatch) -> IssueTypeOut:
    """Change an API-registered type; code types → 409 `issue_type_read_only`."""
    return service.update_issue_type(ctx=ctx, slug=slug, changes=body.changes())
