"""What both databases can store of client-given JSON (pure: no framework, no database).

PostgreSQL refuses NUL characters in text and JSONB, and orjson (the JSON column serializer)
refuses integers beyond 64 bits; SQLite takes both. Refusing such values at the edge with a 422
keeps the two backends alike and turns what would be a database error into a clear answer.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_INT = 2**63 - 1
"""Largest signed 64-bit integer: the bound of every integer column on both backends."""
MIN_INT = -MAX_INT - 1
MAX_UINT = 2**64 - 1
MAX_DEPTH = 64

# orjson reads a dict's or str's storage, the walk calls its methods: subclasses (which may
# override them) are refused by the fast check and left to the walk.
_INDENTED = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_INDENT_2
_ESCAPED_NUL = b"\\u0000"
_CONTAINERS = frozenset((dict, list, tuple))
# A line start indented as a member of a container ``n`` levels deep (orjson's indent), by n.
_INDENTS = tuple(b"\n" + b"  " * n for n in range(MAX_DEPTH))


def nesting_bound(value: Any, at_most: int = MAX_DEPTH - 1) -> int | None:
    """An upper bound on how deeply lists and objects nest in ``value``, if it is surely storable.

    None means "not sure": ``unstorable_path`` must decide. One orjson pass in C replaces the
    Python walk for the usual payload: orjson refuses exactly the integers the walk refuses, and a
    NUL always comes out as ``\\u0000`` (also inside keys). The text is indented, two spaces a
    level, and JSON text holds no raw newline inside a string: when no line is indented
    ``2 * at_most`` spaces or more, no non-empty container sits deeper than ``at_most - 1`` (an
    empty one, written ``[]`` or ``{}`` on its parent's line, one level more), so the answer is
    ``at_most`` after one substring search. Deeper values get a bound from their brackets (every
    list, tuple or object writes one opening bracket; brackets inside strings only loosen it),
    counted level by level when there are many.
    """
    try:
        text = orjson.dumps(value, option=_INDENTED)
    except Exception:  # whatever orjson refuses (types, surrogates, recursion), the walk judges
        return None
    # A NUL is written escaped, so text without any backslash (one memchr) has none; otherwise
    # look for the escape (also matched by an escaped backslash then "u0000": the walk decides).
    if b"\\" in text and _ESCAPED_NUL in text:
        return None
    if at_most >= MAX_DEPTH:
        at_most = MAX_DEPTH - 1
    elif at_most < 1:
        at_most = 1
    if _INDENTS[at_most] not in text:
        return at_most
    brackets = text.count(b"[") + text.count(b"{")
    # Fewer than MAX_DEPTH containers: nothing sits at depth MAX_DEPTH, where the walk stops.
    levels = brackets if brackets < MAX_DEPTH else _levels(value)
    return levels if levels < MAX_DEPTH else None


def _levels(value: Any) -> int:
    """How many levels of lists, tuples and objects nest in ``value``, counted up to MAX_DEPTH.

    Only for what orjson wrote with the subclass passthrough: every container is then exactly a
    dict, list or tuple (and there is no cycle), the ones the walk descends into.
    """
    levels = 0
    layer = [value] if type(value) in _CONTAINERS else []
    while layer and levels < MAX_DEPTH:
        levels += 1
        children: list[Any] = []
        for container in layer:
            children.extend(container.values() if type(container) is dict else container)
        layer = [child for child in children if type(child) in _CONTAINERS]
    return levels


def unstorable(value: Any) -> str | None:
    """The path of the first part of ``value`` that cannot be stored, or None if all can."""
    if nesting_bound(value) is not None:
        return None
    return unstorable_path(value)


def unstorable_path(value: Any, path: str = "", depth: int = 0) -> str | None:
    """``unstorable`` by walking every value: the reference rule, and the path of the culprit."""
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
            found = unstorable_path(item, child, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = unstorable_path(item, f"{path}.{i}" if path else str(i), depth + 1)
            if found is not None:
                return found
    return None
