"""Organizations, projects and API keys: what the admin API accepts and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas import MAX_ID, Id, PatchIn, StrictIn

SLUG_PATTERN = r"^[a-z0-9_-]{1,64}$"
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
ScopeName = Literal["ingest", "read", "triage"]


class OrganizationIn(StrictIn):
    """A new organization."""

    id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Id to use; omitted: the next free id."
    )
    slug: str = Field(pattern=SLUG_PATTERN, description="Unique slug, `[a-z0-9_-]{1,64}`.")
    name: str = Field(min_length=1, max_length=200, description="Display name.")
    early_adopter: bool = Field(False, description="Gets flags in the `ea` stage.")


class OrganizationPatch(PatchIn):
    """Changes to an organization (omitted fields stay as they are)."""

    id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Immutable: only the current id is accepted."
    )
    slug: str | None = Field(None, pattern=SLUG_PATTERN, description="New unique slug.")
    name: str | None = Field(None, min_length=1, max_length=200, description="New display name.")
    early_adopter: bool | None = Field(None, description="Gets flags in the `ea` stage.")


class OrganizationOut(BaseModel):
    """An organization."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Organization id.")
    slug: str = Field(description="Unique slug.")
    name: str = Field(description="Display name.")
    early_adopter: bool = Field(description="Gets flags in the `ea` stage.")
    created_at: datetime = Field(description="When it was created.")


class ProjectIn(StrictIn):
    """A new project."""

    id: int | None = Field(
        None,
        ge=1,
        le=MAX_ID,
        description="Id to use (e.g. the detectors' project id); omitted: next free.",
    )
    organization_id: int = Field(ge=1, le=MAX_ID, description="The owning organization.")
    slug: str = Field(
        pattern=SLUG_PATTERN, description="Slug, unique in the organization; prefixes short ids."
    )
    name: str = Field(min_length=1, max_length=200, description="Display name.")
    resolve_age_hours: int = Field(
        0, ge=0, le=24 * 365 * 10, description="Auto-resolve issues unseen this long; 0 = off."
    )
    retention_days: int | None = Field(
        None,
        ge=MIN_RETENTION_DAYS,
        le=MAX_RETENTION_DAYS,
        description="Days occurrences, issues and logs are kept (1-3650); "
        "omitted: the service's default (90 unless configured).",
    )


class ProjectPatch(PatchIn):
    """Changes to a project (omitted fields stay as they are)."""

    id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Immutable: only the current id is accepted."
    )
    organization_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Immutable: only the current organization is accepted."
    )
    slug: str | None = Field(None, pattern=SLUG_PATTERN, description="New slug, unique in the org.")
    name: str | None = Field(None, min_length=1, max_length=200, description="New display name.")
    resolve_age_hours: int | None = Field(
        None, ge=0, le=24 * 365 * 10, description="Auto-resolve age in hours; 0 = off."
    )
    retention_days: int | None = Field(
        None,
        ge=MIN_RETENTION_DAYS,
        le=MAX_RETENTION_DAYS,
        description="Days occurrences, issues and logs are kept (1-3650).",
    )


class ProjectOut(BaseModel):
    """A project."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Project id.")
    organization_id: int = Field(description="The owning organization.")
    slug: str = Field(description="Slug, unique in the organization.")
    name: str = Field(description="Display name.")
    resolve_age_hours: int = Field(description="Auto-resolve age in hours; 0 = off.")
    retention_days: int = Field(description="Days occurrences, issues and logs are kept.")
    created_at: datetime = Field(description="When it was created.")


class ApiKeyIn(StrictIn):
    """A new API key of an organization."""

    name: str = Field(min_length=1, max_length=200, description="What the key is for.")
    scopes: list[ScopeName] = Field(
        min_length=1, description="What the key may do: `ingest`, `read`, `triage`."
    )
    project_ids: list[Id] | None = Field(
        None,
        min_length=1,
        description="Projects of the organization the key may use; null = all of them.",
    )

    @field_validator("scopes")
    @classmethod
    def _unique_scopes(cls, scopes: list[ScopeName]) -> list[ScopeName]:
        return sorted(set(scopes))

    @field_validator("project_ids")
    @classmethod
    def _unique_projects(cls, ids: list[int] | None) -> list[int] | None:
        return None if ids is None else sorted(set(ids))


class ApiKeyOut(BaseModel):
    """An API key, without its token."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Key id (used to revoke it).")
    organization_id: int = Field(description="The organization the key belongs to.")
    name: str = Field(description="What the key is for.")
    scopes: list[str] = Field(description="What the key may do.")
    project_ids: list[int] | None = Field(description="Projects it may use; null = all.")
    created_at: datetime = Field(description="When it was created.")
    revoked_at: datetime | None = Field(description="When it was revoked; null while active.")


class ApiKeyCreated(ApiKeyOut):
    """A freshly created API key: the only answer that shows its token."""

    token: str = Field(description="The bearer token. Shown once; only its hash is stored.")
