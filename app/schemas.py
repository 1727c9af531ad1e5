"""Base classes shared by the input schemas of every domain package."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from app.storable import unstorable

MAX_ID = 2**63 - 1
"""Largest id of organizations and projects (64-bit columns on every backend)."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""An id given in a body: positive and within the 64-bit range the columns can hold."""

MAX_INT32 = 2**31 - 1
"""Largest id of tables with 32-bit keys (API keys, webhooks, issue types, categories)."""

IdPath = Annotated[int, Path(ge=-MAX_ID - 1, le=MAX_ID, description="The id.")]
"""An id in the URL path; out of range → 422 instead of a database error."""

Int32IdPath = Annotated[int, Path(ge=-MAX_INT32 - 1, le=MAX_INT32, description="The id.")]
"""The id of a table with 32-bit keys in the URL path."""


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


Storable = AfterValidator(_storable)
"""Refuses what one of the databases cannot store (NUL characters, integers beyond 64 bits)."""


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
"""Refuses a string with NUL characters (PostgreSQL text cannot hold them)."""


class StrictIn(BaseModel):
    """An input model that refuses unknown fields, so typos are reported instead of ignored."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refusing it here keeps both databases alike.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if isinstance(value, dict | list):
            _storable(value)
        return value


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
