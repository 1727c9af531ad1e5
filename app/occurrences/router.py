"""HTTP endpoints for sending and reading occurrences."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.auth.dependencies import IngestDep, ReadDep
from app.auth.principal import Principal
from app.context import AppContext
from app.dependencies import CtxDep
from app.errors import InvalidPayload, error_responses
from app.occurrences import reads
from app.occurrences.ingest.messages import ingest_messages
from app.occurrences.ingest.writer import writer_of
from app.occurrences.schemas import (
    BatchIn,
    BatchOut,
    OccurrenceAccepted,
    OccurrenceIn,
    OccurrenceOut,
    OccurrencePage,
    PendingPage,
)
from app.occurrences.throttle import enforce_ingest_rate
from app.openapi_models import body_schema
from app.responses import JSONResponse
from app.schemas import MAX_ID, IssueId

router = APIRouter(tags=["occurrences"])
# An issue's occurrences: listed in the docs with the issue endpoints.
issue_router = APIRouter(tags=["issues"])


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}", details={"field": None}) from None


async def _json_body(request: Request) -> Any:
    return _parse(await request.body())


async def answer_occurrence(ctx: AppContext, principal: Principal, raw: bytes) -> JSONResponse:
    """POST /occurrences once the caller is known (also called by app.fastpath)."""
    payload = _parse(raw)
    enforce_ingest_rate(ctx, principal, payload)
    [result] = await writer_of(ctx).submit([payload], principal)
    return _answer(result.status_code, result.body)


async def answer_batch(ctx: AppContext, principal: Principal, raw: bytes) -> JSONResponse:
    """POST /occurrences/batch once the caller is known (also called by the fast path)."""
    payload = _parse(raw)
    if not isinstance(payload, dict) or not isinstance(payload.get("occurrences"), list):
        raise InvalidPayload(
            'body must be {"occurrences": [...]}', details={"field": "occurrences"}
        )
    items = payload["occurrences"]
    if len(items) > ctx.settings.max_batch_items:
        raise InvalidPayload(
            f"at most {ctx.settings.max_batch_items} occurrences per batch",
            code="batch_too_large",
            details={"field": "occurrences", "limit": ctx.settings.max_batch_items},
        )
    enforce_ingest_rate(ctx, principal, items)
    results = await writer_of(ctx).submit(items, principal)
    return _answer(200, {"results": [_batch_item(r.status_code, r.body) for r in results]})


def _answer(status_code: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status_code)


@router.post(
    "/occurrences",
    status_code=202,
    summary="Send one occurrence",
    response_model=OccurrenceAccepted,
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
    openapi_extra=body_schema(OccurrenceIn),
)
async def post_occurrence(request: Request, principal: IngestDep) -> JSONResponse:
    """Group one occurrence into an issue; answered after the commit with its outcome."""
    return await answer_occurrence(request.app.state.ctx, principal, await request.body())


@router.post(
    "/occurrences/batch",
    status_code=200,
    summary="Send up to 1,000 occurrences",
    response_model=BatchOut,
    responses=error_responses(401, 403, 413, 422, 429, 503),
    openapi_extra=body_schema(BatchIn),
)
async def post_batch(request: Request, ctx: CtxDep, principal: IngestDep) -> JSONResponse:
    """Each item is judged on its own; one result per item, in order, after one commit."""
    return await answer_batch(ctx, principal, await request.body())


def _batch_item(status_code: int, body: dict[str, Any]) -> dict[str, Any]:
    if status_code < 400:
        return body
    err = body["error"]
    return {
        "status": status_code,
        "code": err["code"],
        "message": err["message"],
        "details": err["details"],
    }


@router.post(
    "/ingest",
    summary="Send topic-shaped messages",
    responses={
        200: {"description": "An array was sent (or one status change): one result per message."},
        202: {"model": OccurrenceAccepted, "description": "One occurrence message was accepted."},
        **error_responses(401, 403, 404, 413, 422, 429, 503),
    },
    openapi_extra=body_schema(OccurrenceIn, array_too=True),
)
async def post_ingest(request: Request, ctx: CtxDep, principal: IngestDep) -> JSONResponse:
    """Messages as on the `ingest-occurrences` topic (`payload_type` occurrence|status_change)."""
    payload = await _json_body(request)
    if isinstance(payload, list):
        if len(payload) > ctx.settings.max_batch_items:
            raise InvalidPayload(
                f"at most {ctx.settings.max_batch_items} messages per request",
                code="batch_too_large",
                details={"limit": ctx.settings.max_batch_items},
            )
        enforce_ingest_rate(ctx, principal, payload)
        results = await run_in_threadpool(ingest_messages, ctx, payload, principal=principal)
        # A list this long may have journaled counts: the writer folds them when ingest idles.
        writer_of(ctx).watch_journal()
        items = []
        for r in results:
            item = _batch_item(r.status_code, r.body)
            item["payload_type"] = r.payload_type
            items.append(item)
        return _answer(200, {"results": items})
    enforce_ingest_rate(ctx, principal, payload)
    [result] = await run_in_threadpool(ingest_messages, ctx, [payload], principal=principal)
    return _answer(result.status_code, result.body)


@router.get(
    "/occurrences/{occurrence_id}",
    summary="Read a stored occurrence",
    response_model=OccurrenceOut,
    responses=error_responses(401, 403, 404, 422),
)
def get_occurrence(
    occurrence_id: str,
    ctx: CtxDep,
    principal: ReadDep,
    project_id: Annotated[
        int, Query(ge=-MAX_ID - 1, le=MAX_ID, description="Project of the occurrence.")
    ],
) -> OccurrenceOut:
    """An accepted occurrence as stored (normalised ids, resolved priority, its event)."""
    return reads.get_occurrence(
        ctx, principal=principal, project_id=project_id, occurrence_id=occurrence_id
    )


@router.get(
    "/pending",
    summary="Fingerprints waiting below a noise threshold",
    response_model=PendingPage,
    responses=error_responses(401, 403, 404, 422),
)
def list_pending(
    ctx: CtxDep,
    principal: ReadDep,
    project: Annotated[list[int] | None, Query(description="Limit to these projects.")] = None,
    type: Annotated[list[str] | None, Query(description="Limit to these type slugs.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most windows to list.")] = 100,
) -> PendingPage:
    """Open noise windows with their count, threshold and end."""
    return reads.list_pending(ctx, principal=principal, projects=project, types=type, limit=limit)


@issue_router.get(
    "/issues/{issue_id}/occurrences",
    summary="An issue's occurrences",
    response_model=OccurrencePage,
    responses=error_responses(401, 403, 404, 422),
)
def list_issue_occurrences(
    issue_id: IssueId,
    ctx: CtxDep,
    principal: ReadDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size, 1–100.")] = 25,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> OccurrencePage:
    """Occurrences of the issue, newest first."""
    return reads.list_issue_occurrences(
        ctx, principal=principal, issue_id=issue_id, limit=limit, cursor=cursor
    )
