"""Admin endpoints of webhooks: registration and the delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import AdminDep
from app.dependencies import CtxDep
from app.errors import error_responses
from app.notifications import service
from app.notifications.schemas import DeliveryPage, WebhookIn, WebhookOut
from app.schemas import IdPath, Int32IdPath

router = APIRouter(prefix="/admin", tags=["webhooks"])


@router.post(
    "/projects/{project_id}/webhooks",
    status_code=201,
    summary="Register a webhook",
    response_model=WebhookOut,
    responses=error_responses(401, 403, 404, 422),
)
def create_webhook(
    project_id: IdPath, data: WebhookIn, ctx: CtxDep, _admin: AdminDep
) -> WebhookOut:
    """Register a receiver for the project's issue events (private addresses: see settings)."""
    return service.create_webhook(ctx, project_id=project_id, data=data)


@router.get(
    "/projects/{project_id}/webhooks",
    summary="List a project's webhooks",
    response_model=list[WebhookOut],
    responses=error_responses(401, 403, 404),
)
def list_webhooks(project_id: IdPath, ctx: CtxDep, _admin: AdminDep) -> list[WebhookOut]:
    """The project's receivers, oldest first (secrets are not shown)."""
    return service.list_webhooks(ctx, project_id=project_id)


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    summary="Delete a webhook",
    response_class=Response,
    responses=error_responses(401, 403, 404),
)
def delete_webhook(webhook_id: Int32IdPath, ctx: CtxDep, _admin: AdminDep) -> Response:
    """Remove a receiver; its pending deliveries are dropped with it (404 `webhook_not_found`)."""
    service.delete_webhook(ctx, webhook_id=webhook_id)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="Delivery log of a webhook",
    response_model=DeliveryPage,
    responses=error_responses(401, 403, 404, 422),
)
def list_deliveries(
    webhook_id: Int32IdPath,
    ctx: CtxDep,
    _admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size (1–100).")] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> DeliveryPage:
    """Every notification queued for this webhook, newest first, with its delivery state."""
    return service.list_deliveries(ctx, webhook_id=webhook_id, limit=limit, cursor=cursor)
