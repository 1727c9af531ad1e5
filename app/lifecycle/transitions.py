"""Status transitions of an issue: which changes are allowed and what each one does (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.issue_types.registry import PriorityLevel
from app.issues.status import (
    VALID_PAIRS,
    GroupStatus,
    GroupSubStatus,
    parse_status,
    parse_substatus,
    status_name,
    substatus_name,
)
from app.notifications.rules import (
    ISSUE_ESCALATING,
    ISSUE_IGNORED,
    ISSUE_REGRESSED,
    ISSUE_RESOLVED,
    ISSUE_UNRESOLVED,
    EventName,
)

SET_RESOLVED = "set_resolved"
SET_RESOLVED_BY_AGE = "set_resolved_by_age"
SET_IGNORED = "set_ignored"
SET_ESCALATING = "set_escalating"
SET_REGRESSION = "set_regression"
AUTO_SET_ONGOING = "auto_set_ongoing"
SET_UNRESOLVED = "set_unresolved"
SET_PRIORITY = "set_priority"
SET_ASSIGNEE = "set_assignee"

ACTIVITY_TYPES = (
    SET_RESOLVED,
    SET_RESOLVED_BY_AGE,
    SET_IGNORED,
    SET_ESCALATING,
    SET_REGRESSION,
    AUTO_SET_ONGOING,
    SET_UNRESOLVED,
    SET_PRIORITY,
    SET_ASSIGNEE,
)


class TransitionRejected(ValueError):
    """A requested change breaks a rule; ``code`` is the SPEC error code."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        conflict: bool = False,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # True: the request is well-formed but not allowed from the current state (409).
        self.conflict = conflict
        # The fields at fault (SPEC §10 ``details``), when the rule is about how fields combine.
        self.details = details


@dataclass(frozen=True)
class Target:
    """A valid (status, substatus) pair someone asks for."""

    status: int
    substatus: int | None

    def __post_init__(self) -> None:
        allowed = VALID_PAIRS.get(GroupStatus(self.status), frozenset())
        sub = None if self.substatus is None else GroupSubStatus(self.substatus)
        if sub not in allowed:
            raise ValueError(f"invalid pair {self.status}/{self.substatus}")


@dataclass(frozen=True)
class IssueState:
    """The parts of an issue a transition depends on."""

    status: int
    substatus: int | None
    priority: int
    initial_priority: int
    priority_locked: bool


@dataclass(frozen=True)
class Transition:
    """What a change does: new pair, activity type, new priority and the notification to send."""

    status: int
    substatus: int | None
    activity_type: str
    priority: int | None  # None: unchanged
    event: EventName | None  # None: no notification


ESCALATING = Target(GroupStatus.UNRESOLVED, GroupSubStatus.ESCALATING)
ONGOING = Target(GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING)
ARCHIVED_UNTIL_CONDITION_MET = Target(
    GroupStatus.IGNORED, GroupSubStatus.ARCHIVED_UNTIL_CONDITION_MET
)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_target(status: Any, substatus: Any) -> Target:
    """Validate a requested (status, substatus), given by number or name, per SPEC §7."""
    try:
        status_value = parse_status(status)
    except ValueError:
        raise TransitionRejected(
            "unsupported_status",
            f"unsupported status {status!r}: use unresolved, resolved or ignored",
        ) from None
    if _is_empty(substatus):
        if status_value == GroupStatus.RESOLVED:
            return Target(status_value, None)
        raise TransitionRejected(
            "missing_substatus", f"status {status_name(status_value)} needs a substatus"
        )
    if status_value == GroupStatus.RESOLVED:
        raise TransitionRejected("unexpected_substatus", "status resolved takes no substatus")
    try:
        sub_value = parse_substatus(substatus)
    except ValueError:
        raise TransitionRejected("invalid_substatus", f"unknown substatus {substatus!r}") from None
    allowed = VALID_PAIRS[GroupStatus(status_value)]
    if GroupSubStatus(sub_value) not in allowed or sub_value == GroupSubStatus.NEW:
        raise TransitionRejected(
            "invalid_substatus",
            f"substatus {substatus_name(sub_value)} is not valid with status "
            f"{status_name(status_value)}",
        )
    return Target(status_value, sub_value)


def parse_update_target(status: Any, substatus: Any, *, conditions: bool) -> Target | None:
    """The (status, substatus) a person's update asks for; None when it leaves the status.

    Conditions (``ignore_until``) imply ignored / archived_until_condition_met: a missing status
    (or, with ignored, a missing substatus) is filled in, and any other pair is refused.
    """
    if conditions:
        if status is None:
            status = GroupStatus.IGNORED.value
        try:
            ignored = parse_status(status) == GroupStatus.IGNORED
        except ValueError:
            ignored = False  # parse_target below names the unsupported status
        if substatus is None and ignored:
            substatus = GroupSubStatus.ARCHIVED_UNTIL_CONDITION_MET.value
    if status is None:
        if substatus is not None:
            raise TransitionRejected(
                "invalid_payload",
                "substatus needs status",
                details=[{"field": "status", "message": "required with substatus"}],
            )
        return None
    target = parse_target(status, substatus)
    if conditions and target != ARCHIVED_UNTIL_CONDITION_MET:
        raise TransitionRejected(
            "invalid_payload",
            "ignore_until applies only to ignored / archived_until_condition_met",
            details=[{"field": "ignore_until", "message": "needs archived_until_condition_met"}],
        )
    return target


def raised_priority(priority: int) -> int:
    """Escalation's priority: low becomes medium, anything else high."""
    return PriorityLevel.MEDIUM if priority == PriorityLevel.LOW else PriorityLevel.HIGH


def plan_transition(state: IssueState, target: Target) -> Transition | None:
    """The transition from ``state`` to ``target``; None when nothing changes."""
    if state.status == target.status and state.substatus == target.substatus:
        return None
    if target.substatus == GroupSubStatus.ESCALATING and state.status != GroupStatus.IGNORED:
        raise TransitionRejected(
            "invalid_transition",
            f"an issue becomes escalating only from ignored, not from {status_name(state.status)}",
            conflict=True,
        )
    priority: int | None = None
    if target.status == GroupStatus.RESOLVED:
        return Transition(target.status, None, SET_RESOLVED, None, ISSUE_RESOLVED)
    if target.status == GroupStatus.IGNORED:
        return Transition(target.status, target.substatus, SET_IGNORED, None, ISSUE_IGNORED)
    if target.substatus == GroupSubStatus.ESCALATING:
        if not state.priority_locked:
            priority = raised_priority(state.priority)
        return Transition(
            target.status, target.substatus, SET_ESCALATING, priority, ISSUE_ESCALATING
        )
    if target.substatus == GroupSubStatus.REGRESSED:
        event = None if state.status == GroupStatus.UNRESOLVED else ISSUE_REGRESSED
        return Transition(target.status, target.substatus, SET_REGRESSION, None, event)
    # unresolved/ongoing: leaving escalating calms the issue down (back to its initial
    # priority); any other move there is a plain "unresolved", notified only when the issue was
    # not unresolved before.
    if state.status == GroupStatus.UNRESOLVED and state.substatus == GroupSubStatus.ESCALATING:
        if not state.priority_locked:
            priority = state.initial_priority
        return Transition(target.status, target.substatus, AUTO_SET_ONGOING, priority, None)
    event = None if state.status == GroupStatus.UNRESOLVED else ISSUE_UNRESOLVED
    return Transition(target.status, target.substatus, SET_UNRESOLVED, None, event)


def plan_update(state: IssueState, target: Target, *, conditions: bool) -> Transition | None:
    """A person's move to ``target``, with or without new conditions; None when nothing changes.

    New conditions for an issue already archived until a condition is met replace the old ones:
    a re-archive, recorded as ``set_ignored`` but not notified (the status stays).
    """
    transition = plan_transition(state, target)
    if transition is None and conditions:
        return Transition(target.status, target.substatus, SET_IGNORED, None, None)
    return transition


def plan_priority(state: IssueState, priority: int | None) -> int | None:
    """The priority a person's update sets (and locks); None when there is nothing to record.

    Asking for the current priority of an unlocked issue still records it: that locks it.
    """
    if priority is None or (priority == state.priority and state.priority_locked):
        return None
    return priority


def escalation(state: IssueState) -> Transition:
    """The automatic escalation of an ignored issue (forecast or count condition exceeded)."""
    transition = plan_transition(state, ESCALATING)
    assert transition is not None  # an ignored issue is never already escalating
    return transition


# -- the periodic jobs' moves, applied set-based by ``lifecycle.jobs`` ---------------------------

ONGOING_AFTER = timedelta(days=7)
# The moves the jobs make; their activity types tell them from the same moves made by a person.
AUTO_ONGOING = Transition(ONGOING.status, ONGOING.substatus, AUTO_SET_ONGOING, None, None)
RESOLVED_BY_AGE = Transition(GroupStatus.RESOLVED, None, SET_RESOLVED_BY_AGE, None, ISSUE_RESOLVED)
# Which unresolved issues move to ongoing on their own, and the time each one is judged by.
AUTO_ONGOING_FROM = (GroupSubStatus.NEW, GroupSubStatus.REGRESSED)


def ongoing_cutoff(now: datetime) -> datetime:
    """New issues first seen, and regressed ones regressed, before this become ongoing."""
    return now - ONGOING_AFTER


def resolve_cutoff(now: datetime, resolve_age_hours: int) -> datetime:
    """Unresolved issues last seen before this are resolved by age."""
    return now - timedelta(hours=resolve_age_hours)
