"""Flag names and stages (pure)."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum


class FlagKind(StrEnum):
    """What a flag gates."""

    INGEST = "ingest"
    POST_PROCESS = "post_process"
    VISIBLE = "visible"


class Stage(StrEnum):
    """Rollout stage: off, limited access, early access, general availability."""

    OFF = "off"
    LA = "la"
    EA = "ea"
    GA = "ga"


_SUFFIX = {
    FlagKind.INGEST: "ingest",
    FlagKind.POST_PROCESS: "post-process-group",
    FlagKind.VISIBLE: "visible",
}


def flag_name(slug: str, kind: FlagKind) -> str:
    """``organizations:<slug with - for _>-<kind>``."""
    return f"organizations:{slug.replace('_', '-')}-{_SUFFIX[kind]}"


def flag_on(
    stage: Stage | str, organizations: Collection[int], organization_id: int, early_adopter: bool
) -> bool:
    """Whether a flag at ``stage`` with this organization list is on for an organization."""
    stage = Stage(stage)
    if stage is Stage.GA:
        return True
    if stage is Stage.OFF:
        return False
    if organization_id in organizations:
        return True
    return stage is Stage.EA and early_adopter
