"""Base classes shared by the input schemas of every domain package."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from fastapi import Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from app.storable import MAX_INT, MIN_INT, unstorable

MAX_ID = MAX_INT
"""Largest id a database column holds (64-bit on every backend); bigger ids are refused."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""An id given in a body: positive and within the 64-bit range the columns can hold."""

MAX_INT32 = 2**31 - 1
"""Largest id of tables with 32-bit keys (API keys, webhooks, issue types, categories)."""

IdPath = Annotated[int, Path(ge=MIN_INT, le=MAX_ID, description="The id.")]
"""An id in the URL path; out of range → 422 instead of a database error."""

Int32IdPath = Annotated[int, Path(ge=-MAX_INT32 - 1, le=MAX_INT32, description="The id.")]
"""The id of a table with 32-bit keys in the URL path."""

IssueId = Annotated[int, Path(ge=1, le=MAX_ID, description="The issue's id.")]
"""An issue's id in the URL path (issues start at 1)."""


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # e.g. 9999-12-31T23:59:59-14:00, past the largest datetime once in UTC
        raise ValueError("is out of range once converted to UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A time as an aware UTC datetime (no zone means UTC); beyond the representable range → 422."""


def _storable(value: Any) -> Any:
    bad = unstorable(value)
    if bad is not None:
        raise ValueError(f"{bad}: no NUL characters or integers beyond 64 bits")
    return value


NUL = "\x00"
NUL_MESSAGE = "must not contain NUL characters"


class StorableIn(BaseModel):
    """An input model whose strings, objects and arrays both databases can store (422 if not).

    Every body model but the occurrence ones derives from it (directly or through ``StrictIn``),
    so a NUL in any string field answers 422 ``invalid_payload`` on SQLite and PostgreSQL alike;
    occurrences follow the same rule in their own validation (``app.occurrences.validation``).
    """

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refusing it here keeps both databases alike.
        if isinstance(value, str) and NUL in value:
            raise ValueError(NUL_MESSAGE)
        if isinstance(value, dict | list):
            _storable(value)
        return value


class StrictIn(StorableIn):
    """An input model that refuses unknown fields, so typos are reported instead of ignored."""

    model_config = ConfigDict(extra="forbid")


async def refuse_nul_parameters(request: Request) -> None:
    """Refuse a NUL in any query or path parameter (name or value) with 422 ``invalid_payload``.

    Installed on every route where the app is assembled, so no parameter can carry a NUL to
    PostgreSQL (which refuses it in text) and both databases answer alike.
    """
    errors = [
        {"loc": (where, name), "msg": NUL_MESSAGE, "type": "value_error"}
        for where, items in (
            ("path", request.path_params.items()),
            ("query", request.query_params.multi_items()),
        )
        for name, value in items
        if NUL in name or (isinstance(value, str) and NUL in value)
    ]
    if errors:
        raise RequestValidationError(errors)


class PatchIn(StrictIn):
    """A partial update: only the fields sent change; ``null`` only where ``nullable`` allows."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("may be omitted but not null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their validated values."""
        return self.model_dump(exclude_unset=True)
