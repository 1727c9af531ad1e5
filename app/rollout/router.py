"""Admin API: rollout flags of unreleased issue types."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.dependencies import AdminDep
from app.dependencies import CtxDep
from app.errors import error_responses
from app.issue_types.flags import FlagKind
from app.rollout import service
from app.rollout.schemas import FlagIn, FlagOut
from app.schemas import IdPath

router = APIRouter(prefix="/admin", tags=["admin: rollout flags"])

AUTH = (401, 403)


@router.get(
    "/flags",
    summary="List rollout flags",
    response_model=list[FlagOut],
    responses=error_responses(*AUTH),
)
def list_flags(ctx: CtxDep, _: AdminDep) -> list[FlagOut]:
    """Every flag (ingest, post-process, visible) of every unreleased type."""
    return service.list_flags(ctx=ctx)


@router.put(
    "/issue-types/{slug}/flags/{kind}",
    summary="Set a rollout flag",
    response_model=FlagOut,
    responses=error_responses(*AUTH, 404, 409, 422),
)
def set_flag(ctx: CtxDep, _: AdminDep, slug: str, kind: FlagKind, body: FlagIn) -> FlagOut:
    """Set a flag's stage and organizations; a released type → 409 `issue_type_released`."""
    return service.set_flag(ctx=ctx, slug=slug, kind=kind, data=body)


@router.get(
    "/organizations/{organization_id}/features",
    summary="Flags on for an organization",
    response_model=list[str],
    responses=error_responses(*AUTH, 404),
)
def organization_features(ctx: CtxDep, _: AdminDep, organization_id: IdPath) -> list[str]:
    """The names of the rollout flags that are on for this organization."""
    return service.organization_features(ctx=ctx, organization_id=organization_id)
