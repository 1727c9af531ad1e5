"""Opaque keyset cursors (pure): the last row's sort value and id."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson


class BadCursor(ValueError):
    """A cursor that was not made by this service (or for another sort)."""


MALFORMED = "malformed cursor"
OTHER_QUERY = "cursor does not match this query"


def encode(sort: str, value: Any, row_id: Any) -> str:
    """A cursor positioned after the row with this sort value and id."""
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = orjson.dumps({"s": sort, "v": value, "i": row_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def utc_time(text: Any) -> datetime:
    """An ISO-8601 time with a zone, as an aware UTC datetime; ``BadCursor`` if it is none.

    A time that leaves the representable range once converted (``0001-01-01T00:00:00+01:00``)
    is refused here, where it would otherwise overflow when bound to a query.
    """
    if not isinstance(text, str):
        raise BadCursor(MALFORMED)
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise BadCursor(MALFORMED)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadCursor(MALFORMED) from None


def _payload(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:  # also binascii.Error, UnicodeError and orjson's JSONDecodeError
        raise BadCursor(MALFORMED) from None


def decode(cursor: str, sort: str) -> tuple[Any, Any]:
    """The (sort value, id) a cursor holds, times in UTC; ``BadCursor`` if malformed or foreign."""
    data = _payload(cursor)
    if not isinstance(data, dict) or "i" not in data or not isinstance(data.get("s"), str):
        raise BadCursor(MALFORMED)
    if data["s"] != sort:
        raise BadCursor(OTHER_QUERY)
    value = data.get("v")
    if isinstance(value, dict) and "t" in value:
        value = utc_time(value["t"])
    return value, data["i"]
