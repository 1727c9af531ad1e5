"""HTTP: `PATCH /issues/{id}`, `GET /issues/{id}/activity`, `GET /issues/{id}/forecast`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from app.auth.dependencies import ReadDep, TriageDep
from app.dependencies import CtxDep
from app.errors import error_responses
from app.issues.schemas import IssueOut
from app.responses import JSONResponse
from app.schemas import IssueId
from app.triage import service
from app.triage.schemas import ActivityPage, ForecastOut, IssueUpdateIn

router = APIRouter(tags=["issues"])


@router.patch(
    "/issues/{issue_id}",
    summary="Triage an issue",
    response_model=IssueOut,
    responses={
        200: {"headers": {"ETag": {"description": "Version of the issue answer."}}},
        **error_responses(401, 403, 404, 409, 412, 413, 422, 503),
    },
    description="Change status, substatus, priority (which locks it against automatic "
    "changes), the assignee (`user:<id>`, `team:<id>` or null) or archive the issue until a "
    "condition is met (`ignore_until`). Same rules as "
    "`POST /status-changes`. Send `If-Match` with the issue's `ETag` to refuse stale updates "
    "(412 `precondition_failed`).",
)
def patch_issue(
    issue_id: IssueId,
    changes: IssueUpdateIn,
    principal: TriageDep,
    ctx: CtxDep,
    if_match: Annotated[
        str | None,
        Header(
            description="The `ETag` the change is based on (its quotes may be left out); "
            "`*` matches any."
        ),
    ] = None,
) -> JSONResponse:
    """Apply a person's changes to an issue."""
    body, tag = service.update_issue(
        ctx=ctx, principal=principal, issue_id=issue_id, changes=changes, if_match=if_match
    )
    return JSONResponse(body, headers={"ETag": tag})


@router.get(
    "/issues/{issue_id}/activity",
    summary="What happened to an issue",
    response_model=ActivityPage,
    responses=error_responses(401, 403, 404, 422, 503),
    description="Status changes, regressions, escalations and priority changes, newest first.",
)
def get_activity(
    issue_id: IssueId,
    request: Request,
    principal: ReadDep,
    ctx: CtxDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 25,
    cursor: Annotated[
        str | None, Query(max_length=19, description="`next_cursor` of the last page.")
    ] = None,
) -> JSONResponse:
    """List an issue's activity."""
    page = service.list_activity(
        ctx=ctx, principal=principal, issue_id=issue_id, limit=limit, cursor=cursor
    )
    headers = {}
    if page.next_cursor:
        url = request.url.include_query_params(cursor=page.next_cursor)
        headers["Link"] = f'<{url}>; rel="next"'
    return JSONResponse(page.model_dump(mode="json"), headers=headers)


@router.get(
    "/issues/{issue_id}/forecast",
    summary="Escalation forecast of an issue",
    response_model=ForecastOut,
    responses=error_responses(401, 403, 404, 422, 503),
    description="The 14 daily ceilings computed when the issue was archived until escalating "
    "(refreshed daily); `ceilings` is empty when there is no forecast.",
)
def get_forecast(issue_id: IssueId, principal: ReadDep, ctx: CtxDep) -> ForecastOut:
    """Read an issue's forecast."""
    return service.get_forecast(ctx=ctx, principal=principal, issue_id=issue_id)
