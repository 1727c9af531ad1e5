"""Grouping rules (pure): fingerprint hashing and choosing the issue an occurrence joins."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def hash_element(element: str) -> str:
    """MD5 hex of one fingerprint element's UTF-8 text."""
    return hashlib.md5(element.encode("utf-8"), usedforsecurity=False).hexdigest()


def fingerprint_hashes(fingerprint: Sequence[str]) -> list[str]:
    """The hash of each element, in order, without repeats."""
    seen: dict[str, None] = {}
    for element in fingerprint:
        seen.setdefault(hash_element(element), None)
    return list(seen)


@dataclass(frozen=True)
class GroupingDecision:
    """Which issue an occurrence goes to.

    ``group_id`` is the existing issue (first element whose hash is known), or None for a new
    issue keyed by ``primary_hash``; ``link_hashes`` are the other hashes a new issue takes.
    """

    group_id: int | None
    primary_hash: str
    link_hashes: tuple[str, ...]


def decide(hashes: Sequence[str], known: Mapping[str, int]) -> GroupingDecision:
    """First known hash wins; otherwise a new issue keyed by the first hash takes the free ones."""
    for h in hashes:
        group_id = known.get(h)
        if group_id is not None:
            return GroupingDecision(group_id, h, ())
    return GroupingDecision(None, hashes[0], tuple(h for h in hashes[1:] if h not in known))
