"""Request and answer shapes of the webhook admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from app.notifications.rules import EventName, check_url_shape
from app.schemas import StorableIn


class WebhookIn(StorableIn):
    """A receiver to register for a project."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="Where to POST notifications; `http` or `https` only.",
        examples=["https://hooks.example.com/issue-platform"],
    )
    secret: str = Field(
        min_length=1,
        max_length=200,
        description="Shared secret used to sign every body (HMAC-SHA256); never shown again.",
    )
    events: list[EventName] = Field(
        min_length=1,
        description="Events to receive: a non-empty subset of the six issue events.",
        examples=[["issue.created", "issue.regressed"]],
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url_shape(value.strip())

    @field_validator("events")
    @classmethod
    def _unique(cls, value: list[EventName]) -> list[EventName]:
        return list(dict.fromkeys(value))


class WebhookOut(BaseModel):
    """A registered receiver (the secret is not shown)."""

    id: int = Field(description="Webhook id.")
    project_id: int = Field(description="Project whose issues it receives.")
    url: str = Field(description="Receiver URL.")
    events: list[str] = Field(description="Events it is subscribed to.")
    created_at: datetime = Field(description="When it was registered.")


class DeliveryOut(BaseModel):
    """One notification to one webhook: outbox row and log entry."""

    id: str = Field(description="Delivery id (32 hex), also `id` in the body and header.")
    event: str = Field(description="Event name, e.g. `issue.created`.")
    issue_id: int | None = Field(description="Issue the notification is about.")
    state: Literal["pending", "delivered", "failed"] = Field(
        description="`pending` (waiting or retrying), `delivered` (2xx) or `failed` (gave up)."
    )
    attempts: int = Field(description="HTTP attempts made so far.")
    last_status_code: int | None = Field(description="HTTP status of the last attempt, if any.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    created_at: datetime = Field(description="When the notification was queued.")
    delivered_at: datetime | None = Field(description="When a 2xx answer was received.")
    next_attempt_at: datetime = Field(description="When the next attempt is due (if pending).")


class DeliveryPage(BaseModel):
    """A page of the delivery log, newest first."""

    data: list[DeliveryOut] = Field(description="Deliveries, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")
