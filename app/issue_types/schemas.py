"""Categories and issue types: what the admin API accepts and answers."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from app.schemas import MAX_INT32, PatchIn, StrictIn

SLUG_PATTERN = r"^[a-z0-9_-]{1,64}$"
PriorityRef = Literal["low", "medium", "high", 25, 50, 75]


class CategoryIn(StrictIn):
    """A new category."""

    id: int = Field(ge=1, le=MAX_INT32, description="Unique category id.")
    slug: str = Field(pattern=SLUG_PATTERN, description="Unique slug, `[a-z0-9_-]{1,64}`.")
    description: str = Field("", max_length=2000, description="What the category groups.")


class CategoryOut(BaseModel):
    """A category of issue types."""

    id: int = Field(description="Category id.")
    slug: str = Field(description="Category slug.")
    description: str = Field(description="What the category groups.")
    builtin: bool = Field(description="Shipped with the service (cannot be changed).")


class NoiseConfigIn(StrictIn):
    """Keep occurrences pending until `ignore_limit` arrive within `expiry_seconds`."""

    ignore_limit: int = Field(ge=1, le=MAX_INT32, description="Occurrences that open an issue.")
    expiry_seconds: int = Field(gt=0, le=MAX_INT32, description="Length of the noise window.")


class NoiseConfigOut(BaseModel):
    """The noise threshold of a type."""

    ignore_limit: int = Field(description="Occurrences that open an issue.")
    expiry_seconds: int = Field(description="Length of the noise window in seconds.")


class CreationQuotaIn(StrictIn):
    """At most `limit` new issues per project in any `window_seconds`."""

    limit: int = Field(ge=1, le=MAX_INT32, description="New issues allowed per window.")
    window_seconds: int = Field(ge=1, le=MAX_INT32, description="Window length in seconds.")


class CreationQuotaOut(BaseModel):
    """The creation quota of a type."""

    limit: int = Field(description="New issues allowed per project and window.")
    window_seconds: int = Field(description="Window length in seconds.")


class IssueTypeIn(StrictIn):
    """A new issue type registered through the API."""

    type_id: int = Field(ge=1, le=MAX_INT32, description="Unique type id (the `type` field).")
    slug: str = Field(pattern=SLUG_PATTERN, description="Unique slug, `[a-z0-9_-]{1,64}`.")
    description: str = Field(min_length=1, max_length=2000, description="Human-readable name.")
    category: int | str = Field(description="Category id or slug.")
    released: bool = Field(False, description="Released types have no rollout flags.")
    noise_config: NoiseConfigIn | None = Field(None, description="Noise threshold; null = none.")
    enable_auto_resolve: bool = Field(True, description="Auto-resolve by project age.")
    enable_escalation_detection: bool = Field(True, description="Detect escalating issues.")
    default_priority: PriorityRef = Field(
        "medium", description="Priority of new issues: `low`, `medium`, `high` or 25/50/75."
    )
    creation_quota: CreationQuotaIn | None = Field(
        None, description="Limit on new issues per project; null = none."
    )
    in_default_search: bool = Field(True, description="Listed in `/issues` without a filter.")


class IssueTypePatch(PatchIn):
    """Changes to an API-registered type (`type_id`, `slug` and `category` are immutable)."""

    nullable: ClassVar[frozenset[str]] = frozenset({"noise_config", "creation_quota"})

    type_id: int | None = Field(None, description="Immutable: only the current id is accepted.")
    slug: str | None = Field(None, description="Immutable: only the current slug is accepted.")
    category: int | str | None = Field(
        None, description="Immutable: only the current category is accepted."
    )
    description: str | None = Field(
        None, min_length=1, max_length=2000, description="Human-readable name."
    )
    released: bool | None = Field(None, description="Released types have no rollout flags.")
    noise_config: NoiseConfigIn | None = Field(
        None, description="Noise threshold; null removes it."
    )
    enable_auto_resolve: bool | None = Field(None, description="Auto-resolve by project age.")
    enable_escalation_detection: bool | None = Field(None, description="Detect escalating issues.")
    default_priority: PriorityRef | None = Field(None, description="Priority of new issues.")
    creation_quota: CreationQuotaIn | None = Field(
        None, description="Limit on new issues per project; null removes it."
    )
    in_default_search: bool | None = Field(None, description="Listed in `/issues` unfiltered.")


class IssueTypeOut(BaseModel):
    """An issue type, whatever its source."""

    type_id: int = Field(description="Type id (the `type` field of occurrences).")
    slug: str = Field(description="Type slug.")
    description: str = Field(description="Human-readable name.")
    category: str = Field(description="Category slug.")
    category_id: int = Field(description="Category id.")
    released: bool = Field(description="Released types have no rollout flags.")
    noise_config: NoiseConfigOut | None = Field(description="Noise threshold, if any.")
    enable_auto_resolve: bool = Field(description="Auto-resolve by project age.")
    enable_escalation_detection: bool = Field(description="Detect escalating issues.")
    default_priority: str = Field(description="`low`, `medium` or `high`.")
    creation_quota: CreationQuotaOut | None = Field(description="Creation quota, if any.")
    in_default_search: bool = Field(description="Listed in `/issues` without a filter.")
    source: str = Field(description="`builtin`, `code` (a GroupType subclass) or `api`.")
    read_only: bool = Field(description="Defined in code: only its rollout flags can change.")
    flags: list[str] = Field(
        description="The rollout flag names (ingest, post-process, visible); empty when released."
    )
