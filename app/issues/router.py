"""HTTP endpoints of the issue stream."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import ReadDep
from app.dependencies import CtxDep
from app.errors import error_responses
from app.issues import service
from app.issues.schemas import IssueOut, IssuePage
from app.issues.serialize import etag
from app.schemas import IssueId, UtcDatetime

router = APIRouter(tags=["issues"])


@router.get(
    "/issues",
    summary="Search the issue stream",
    response_model=IssuePage,
    responses=error_responses(401, 403, 404, 422),
)
def list_issues(
    request: Request,
    response: Response,
    ctx: CtxDep,
    principal: ReadDep,
    type: Annotated[list[str] | None, Query(description="Issue type slug (repeatable).")] = None,
    category: Annotated[
        list[str] | None, Query(description="Category id or slug (repeatable).")
    ] = None,
    project: Annotated[list[int] | None, Query(description="Project id (repeatable).")] = None,
    status: Annotated[list[str] | None, Query(description="Status name or number.")] = None,
    substatus: Annotated[list[str] | None, Query(description="Substatus name or number.")] = None,
    priority: Annotated[list[str] | None, Query(description="low|medium|high or 25/50/75.")] = None,
    level: Annotated[list[str] | None, Query(description="debug|info|warning|error|fatal.")] = None,
    query: Annotated[
        str | None,
        Query(
            max_length=500,
            description="Text in title, subtitle or culprit, or a short id (`PROJ-12`).",
        ),
    ] = None,
    first_seen_after: Annotated[UtcDatetime | None, Query(description="ISO-8601.")] = None,
    first_seen_before: Annotated[UtcDatetime | None, Query(description="ISO-8601.")] = None,
    last_seen_after: Annotated[UtcDatetime | None, Query(description="ISO-8601.")] = None,
    last_seen_before: Annotated[UtcDatetime | None, Query(description="ISO-8601.")] = None,
    sort: Annotated[
        str, Query(description="last_seen (default), first_seen, times_seen or priority.")
    ] = "last_seen",
    limit: Annotated[int, Query(ge=1, le=100, description="Page size, 1–100.")] = 25,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    include_hidden: Annotated[
        bool, Query(description="Admin only: include types whose visible flag is off.")
    ] = False,
) -> IssuePage:
    """Issues newest or largest first; follow `next_cursor` (or the `Link` header) for more."""
    filters = service.IssueFilters(
        types=type,
        categories=category,
        projects=project,
        statuses=status,
        substatuses=substatus,
        priorities=priority,
        levels=level,
        query=query,
        first_seen_after=first_seen_after,
        first_seen_before=first_seen_before,
        last_seen_after=last_seen_after,
        last_seen_before=last_seen_before,
        sort=sort,
        limit=limit,
        cursor=cursor,
        include_hidden=include_hidden,
    )
    page, next_cursor = service.list_issues(ctx, principal=principal, filters=filters)
    if next_cursor:
        url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return page


@router.get(
    "/issues/{issue_id}",
    summary="Read one issue",
    response_model=IssueOut,
    responses=error_responses(401, 403, 404),
)
def get_issue(
    issue_id: IssueId,
    response: Response,
    ctx: CtxDep,
    principal: ReadDep,
    include_hidden: Annotated[
        bool, Query(description="Admin only: show a type whose visible flag is off.")
    ] = False,
) -> IssueOut:
    """One issue with its latest occurrence; the `ETag` header is used by `If-Match`."""
    issue, group = service.get_issue(
        ctx, principal=principal, issue_id=issue_id, include_hidden=include_hidden
    )
    response.headers["ETag"] = etag(group)
    return issue
