"""Status-change payloads and answers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.issues.schemas import ActivityOut, IssueOut
from app.schemas import MAX_ID, StorableIn


class StatusChangeIn(StorableIn):
    """A detector's request to change an issue's status."""

    model_config = ConfigDict(extra="ignore")

    fingerprint: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1,
        description="The issue's fingerprint; its first element finds the issue.",
    )
    project_id: int = Field(ge=-MAX_ID, le=MAX_ID, description="Project of the issue.")
    new_status: int | str | None = Field(
        description="`unresolved` (0), `resolved` (1) or `ignored` (2), by number or name."
    )
    new_substatus: int | str | None = Field(
        None,
        description="Substatus by number or name; required for unresolved and ignored, "
        "forbidden for resolved.",
    )
    id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Idempotency key: a repeated id is answered with the first answer.",
    )
    activity_data: dict[str, Any] | None = Field(
        None, description="Stored on the activity row the change records."
    )
    detector_id: Annotated[str, Field(max_length=80)] | int | None = Field(
        None, description="Which detector sent the change (recorded as the activity's actor)."
    )


class StatusChangeOut(BaseModel):
    """The answer to a status change."""

    issue: IssueOut = Field(description="The issue after the change.")
    changed: bool = Field(description="False when the issue already had this status.")
    activity: ActivityOut | None = Field(description="The recorded activity; null if unchanged.")


class IssueStateOut(BaseModel):
    """Where a status change left the issue: its id and status, nothing of its content."""

    id: int = Field(description="The issue's id.")
    status: str = Field(description="`unresolved`, `resolved` or `ignored`.")
    substatus: str | None = Field(description="The substatus; null for `resolved`.")


class ActivityTypeOut(BaseModel):
    """The activity a status change recorded: its id and type only."""

    id: int = Field(description="Activity id.")
    type: str = Field(description="`set_resolved`, `set_ignored`, `set_escalating`, …")


class StatusChangeBriefOut(BaseModel):
    """The answer to a status change for a key without the `read` scope: the change only."""

    issue: IssueStateOut = Field(description="The issue's id, status and substatus after it.")
    changed: bool = Field(description="False when the issue already had this status.")
    activity: ActivityTypeOut | None = Field(
        description="The recorded activity's id and type; null if unchanged."
    )
