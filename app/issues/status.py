"""Statuses, substatuses and levels: names, numbers and valid pairs (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any


class GroupStatus(IntEnum):
    """Issue status."""

    UNRESOLVED = 0
    RESOLVED = 1
    IGNORED = 2


class GroupSubStatus(IntEnum):
    """Issue substatus."""

    ARCHIVED_UNTIL_ESCALATING = 1
    ESCALATING = 2
    ONGOING = 3
    ARCHIVED_UNTIL_CONDITION_MET = 4
    ARCHIVED_FOREVER = 5
    REGRESSED = 6
    NEW = 7


STATUS_NAMES = {s.value: s.name.lower() for s in GroupStatus}
SUBSTATUS_NAMES = {s.value: s.name.lower() for s in GroupSubStatus}

VALID_PAIRS: dict[GroupStatus, frozenset[GroupSubStatus | None]] = {
    GroupStatus.UNRESOLVED: frozenset(
        {
            GroupSubStatus.ONGOING,
            GroupSubStatus.ESCALATING,
            GroupSubStatus.REGRESSED,
            GroupSubStatus.NEW,
        }
    ),
    GroupStatus.IGNORED: frozenset(
        {
            GroupSubStatus.ARCHIVED_UNTIL_ESCALATING,
            GroupSubStatus.ARCHIVED_UNTIL_CONDITION_MET,
            GroupSubStatus.ARCHIVED_FOREVER,
        }
    ),
    GroupStatus.RESOLVED: frozenset({None}),
}

LEVELS = ("debug", "info", "warning", "error", "fatal")


@dataclass(frozen=True)
class StatusColumns:
    """The columns a move to a (status, substatus) writes (besides ``substatus_changed_at``)."""

    status: int
    substatus: int | None
    resolved_at: datetime | None
    ignore_until: dict[str, Any] | None

    def values(self) -> dict[str, Any]:
        """The columns by name, for a set-based UPDATE."""
        return {
            "status": self.status,
            "substatus": self.substatus,
            "resolved_at": self.resolved_at,
            "ignore_until": self.ignore_until,
        }


def status_columns(
    status: int, substatus: int | None, *, ignore_until: dict[str, Any] | None, now: datetime
) -> StatusColumns:
    """What a move writes: ``resolved_at`` only when resolved, the conditions only with
    archived_until_condition_met (every other state clears them)."""
    return StatusColumns(
        status=status,
        substatus=substatus,
        resolved_at=now if status == GroupStatus.RESOLVED else None,
        ignore_until=(
            ignore_until if substatus == GroupSubStatus.ARCHIVED_UNTIL_CONDITION_MET else None
        ),
    )


ASSIGNEE_PATTERN = r"^(user|team):[A-Za-z0-9._@+-]{1,90}$"
"""An assignee: `user:<id>` or `team:<id>`, the id 1–90 of these characters (fits the
100-character column). The one rule of both ingest (anything else is dropped) and PATCH (422)."""
ASSIGNEE_RE = re.compile(ASSIGNEE_PATTERN)


def _parse_enum(value: Any, enum: type[IntEnum], what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"unknown {what}: {value!r}")
    if isinstance(value, int):
        try:
            return enum(value).value
        except ValueError:
            raise ValueError(f"unknown {what}: {value!r}") from None
    if isinstance(value, str):
        v = value.strip().lower()
        if v.isdigit():
            return _parse_enum(int(v), enum, what)
        try:
            return enum[v.upper()].value
        except KeyError:
            raise ValueError(f"unknown {what}: {value!r}") from None
    raise ValueError(f"unknown {what}: {value!r}")


def parse_status(value: Any) -> int:
    """A status given by number or name, as its number (ValueError if unknown)."""
    return _parse_enum(value, GroupStatus, "status")


def parse_substatus(value: Any) -> int:
    """A substatus given by number or name, as its number (ValueError if unknown)."""
    return _parse_enum(value, GroupSubStatus, "substatus")


def status_name(value: int) -> str:
    """The name of a status number."""
    return STATUS_NAMES[value]


def substatus_name(value: int | None) -> str | None:
    """The name of a substatus number (None stays None)."""
    return None if value is None else SUBSTATUS_NAMES[value]
