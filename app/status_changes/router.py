"""HTTP: `POST /status-changes`."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.dependencies import IngestDep
from app.dependencies import CtxDep
from app.errors import error_responses
from app.responses import JSONResponse
from app.status_changes import service
from app.status_changes.schemas import StatusChangeBriefOut, StatusChangeIn, StatusChangeOut

router = APIRouter(tags=["status changes"])


@router.post(
    "/status-changes",
    summary="Change an issue's status (detectors)",
    response_model=StatusChangeOut | StatusChangeBriefOut,
    status_code=200,
    responses=error_responses(401, 403, 404, 409, 413, 422, 503),
    description="Resolve, ignore or unresolve the issue whose first fingerprint element is "
    "given (needs the `ingest` scope). Errors: 404 `project_not_found` / `issue_not_found`; "
    "422 `missing_substatus`, `unexpected_substatus`, `invalid_substatus`, "
    "`unsupported_status`; 409 `invalid_transition` (escalating only from ignored). The same "
    "status and substatus answer `changed: false`; a repeated `id` gets the first answer again. "
    "A key without the `read` scope gets the change only (`StatusChangeBriefOut`: the issue's "
    "id, status and substatus, the activity's id and type), never the issue's content.",
)
def post_status_change(payload: StatusChangeIn, principal: IngestDep, ctx: CtxDep) -> JSONResponse:
    """Apply a detector's status change."""
    body = service.change_status(ctx=ctx, principal=principal, payload=payload)
    return JSONResponse(body)
