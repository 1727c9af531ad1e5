"""Base classes shared by the input schemas of every domain package."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class StrictIn(BaseModel):
    """An input model that refuses unknown fields, so typos are reported instead of ignored."""

    model_config = ConfigDict(extra="forbid")


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
