"""Grouping rules (pure): choosing the issue an occurrence joins, from its fingerprint hashes.

The hashes themselves come from :mod:`app.issues.fingerprint`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GroupingDecision:
    """Which issue an occurrence goes to, and which of its hashes that issue takes.

    ``group_id`` is the existing issue (first element whose hash is known), or None for a new
    issue keyed by ``primary_hash``. ``link_hashes`` are the other hashes no issue has yet: they
    are linked to the issue, existing or new, so a later fingerprint holding only one of them
    lands in the same issue.
    """

    group_id: int | None
    primary_hash: str
    link_hashes: tuple[str, ...]


def decide(hashes: Sequence[str], known: Mapping[str, int]) -> GroupingDecision:
    """First known hash wins, else a new issue keyed by the first; either takes the free hashes."""
    for h in hashes:
        group_id = known.get(h)
        if group_id is not None:
            # A one-element fingerprint (the common case) has nothing else to link.
            links = _free(hashes, known) if len(hashes) > 1 else ()
            return GroupingDecision(group_id, h, links)
    return GroupingDecision(None, hashes[0], _free(hashes[1:], known))


def _free(hashes: Sequence[str], known: Mapping[str, int]) -> tuple[str, ...]:
    return tuple(h for h in hashes if h not in known)
