"""Opaque keyset cursors (pure): the last row's sort value and id."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson


class BadCursor(ValueError):
    """A cursor that was not made by this service (or for another sort)."""


def encode(sort: str, value: Any, row_id: Any) -> str:
    """A cursor positioned after the row with this sort value and id."""
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = orjson.dumps({"s": sort, "v": value, "i": row_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, sort: str) -> tuple[Any, Any]:
    """The (sort value, id) a cursor holds; ``BadCursor`` if malformed or for another sort."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("s") != sort or "i" not in data:
            raise BadCursor("cursor does not match this query")
        value = data.get("v")
        if isinstance(value, dict) and "t" in value:
            value = datetime.fromisoformat(value["t"])
        return value, data["i"]
    except (ValueError, TypeError) as exc:
        raise BadCursor("malformed cursor") from exc
