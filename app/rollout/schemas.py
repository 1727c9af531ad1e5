"""Rollout flags: what the admin API accepts and answers."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from app.issue_types.flags import FlagKind
from app.rollout.rules import Stage
from app.schemas import Id, StrictIn


class FlagIn(StrictIn):
    """The stage of a flag and the organizations it lists."""

    stage: Stage = Field(
        description="`off`; `la`: listed organizations; `ea`: listed and early adopters; `ga`."
    )
    organizations: list[Id] = Field(
        default_factory=list, description="Organization ids the `la` and `ea` stages turn on for."
    )

    @field_validator("organizations")
    @classmethod
    def _sorted_unique(cls, ids: list[int]) -> list[int]:
        return sorted(set(ids))


class FlagOut(BaseModel):
    """One rollout flag of an unreleased issue type."""

    name: str = Field(
        description="`organizations:<slug with - for _>-<ingest|post-process-group|visible>`."
    )
    type: str = Field(description="Issue type slug.")
    type_id: int = Field(description="Issue type id.")
    kind: FlagKind = Field(description="What the flag gates: `ingest`, `post_process`, `visible`.")
    stage: Stage = Field(description="`off`, `la`, `ea` or `ga`.")
    organizations: list[int] = Field(description="Organization ids listed for `la` and `ea`.")
