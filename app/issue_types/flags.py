"""The rollout flags of an unreleased issue type: what each gates, and its name (pure).

Rollout (``app.rollout``) stores a stage and an organization list per flag; the flags exist
because the types do, so this vocabulary lives with the types and rollout imports it.
"""

from __future__ import annotations

from enum import StrEnum


class FlagKind(StrEnum):
    """What a flag gates."""

    INGEST = "ingest"
    POST_PROCESS = "post_process"
    VISIBLE = "visible"


_SUFFIX = {
    FlagKind.INGEST: "ingest",
    FlagKind.POST_PROCESS: "post-process-group",
    FlagKind.VISIBLE: "visible",
}


def flag_name(slug: str, kind: FlagKind) -> str:
    """``organizations:<slug with - for _>-<kind>``."""
    return f"organizations:{slug.replace('_', '-')}-{_SUFFIX[kind]}"
