"""What both databases can store of client-given JSON (pure: no framework, no database).

PostgreSQL refuses NUL characters in text and JSONB, and orjson (the JSON column serializer)
refuses integers beyond 64 bits; SQLite takes both. Refusing such values at the edge with a 422
keeps the two backends alike and turns what would be a database error into a clear answer.
"""

from __future__ import annotations

from typing import Any

MIN_INT = -(2**63)
MAX_UINT = 2**64 - 1
MAX_DEPTH = 64


def unstorable(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The path of the first part of ``value`` that cannot be stored, or None if all can."""
    if isinstance(value, str):
        return path or "." if "\x00" in value else None
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    if isinstance(value, int):
        return None if MIN_INT <= value <= MAX_UINT else path or "."
    if depth >= MAX_DEPTH:
        return path or "."
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return child
            found = unstorable(item, child, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = unstorable(item, f"{path}.{i}" if path else str(i), depth + 1)
            if found is not None:
                return found
    return None
