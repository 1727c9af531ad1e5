"""Base classes shared by the input schemas of every domain package."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

MAX_ID = 2**63 - 1
"""Largest id of organizations and projects (64-bit columns on every backend)."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""An id given in a body: positive and within the 64-bit range the columns can hold."""

MAX_INT32 = 2**31 - 1
"""Largest id of tables with 32-bit keys (API keys, webhooks, issue types, categories)."""

IdPath = Annotated[int, Path(le=MAX_ID, description="The id.")]
"""An id in the URL path; out of range → 422 instead of a database error."""

Int32IdPath = Annotated[int, Path(le=MAX_INT32, description="The id.")]
"""The id of a table with 32-bit keys in the URL path."""


class StrictIn(BaseModel):
    """An input model that refuses unknown fields, so typos are reported instead of ignored."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refusing it here keeps both databases alike.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
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
