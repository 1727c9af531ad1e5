"""The fingerprint hash (pure): how an issue is keyed by the elements of its fingerprint.

One definition for every path that finds an issue by fingerprint: ingest groups occurrences
with it, status changes find their issue with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def hash_element(element: str) -> str:
    """MD5 hex of one fingerprint element's UTF-8 text."""
    return hashlib.md5(element.encode("utf-8"), usedforsecurity=False).hexdigest()


def fingerprint_hashes(fingerprint: Sequence[str]) -> list[str]:
    """The hash of each element, in order, without repeats."""
    if len(fingerprint) == 1:  # the common case, without the de-duplication
        return [hash_element(fingerprint[0])]
    seen: dict[str, None] = {}
    for element in fingerprint:
        seen.setdefault(hash_element(element), None)
    return list(seen)
