"""Status transition rules, without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from app.issues.status import GroupStatus as S
from app.issues.status import GroupSubStatus as SS
from app.lifecycle.transitions import (
    AUTO_ONGOING,
    AUTO_ONGOING_FROM,
    ONGOING,
    RESOLVED_BY_AGE,
    IssueState,
    Target,
    Transition,
    TransitionRejected,
    escalation,
    ongoing_cutoff,
    parse_target,
    parse_update_target,
    plan_priority,
    plan_transition,
    plan_update,
    resolve_cutoff,
)

LOW, MEDIUM, HIGH = 25, 50, 75


def state(
    status: int = S.UNRESOLVED,
    substatus: int | None = SS.ONGOING,
    *,
    priority: int = MEDIUM,
    initial: int = MEDIUM,
    locked: bool = False,
) -> IssueState:
    return IssueState(status, substatus, priority, initial, locked)


@pytest.mark.parametrize(
    ("status", "substatus", "expected"),
    [
        ("unresolved", "ongoing", Target(S.UNRESOLVED, SS.ONGOING)),
        (0, 3, Target(S.UNRESOLVED, SS.ONGOING)),
        ("0", "escalating", Target(S.UNRESOLVED, SS.ESCALATING)),
        ("UNRESOLVED", "Regressed", Target(S.UNRESOLVED, SS.REGRESSED)),
        ("resolved", None, Target(S.RESOLVED, None)),
        (1, "", Target(S.RESOLVED, None)),
        ("ignored", "archived_until_escalating", Target(S.IGNORED, SS.ARCHIVED_UNTIL_ESCALATING)),
        (2, 4, Target(S.IGNORED, SS.ARCHIVED_UNTIL_CONDITION_MET)),
        ("ignored", "archived_forever", Target(S.IGNORED, SS.ARCHIVED_FOREVER)),
    ],
)
def test_valid_targets_parse_numbers_and_names(
    status: Any, substatus: Any, expected: Target
) -> None:
    assert parse_target(status, substatus) == expected


@pytest.mark.parametrize(
    ("status", "substatus", "code"),
    [
        ("unresolved", None, "missing_substatus"),
        ("ignored", None, "missing_substatus"),
        (2, "  ", "missing_substatus"),
        ("resolved", "ongoing", "unexpected_substatus"),
        (1, 3, "unexpected_substatus"),
        ("unresolved", "new", "invalid_substatus"),
        ("unresolved", 7, "invalid_substatus"),
        ("unresolved", "archived_forever", "invalid_substatus"),
        ("ignored", "ongoing", "invalid_substatus"),
        ("ignored", "nonsense", "invalid_substatus"),
        ("ignored", 99, "invalid_substatus"),
        ("muted", "ongoing", "unsupported_status"),
        (5, None, "unsupported_status"),
        (True, None, "unsupported_status"),
        (None, None, "unsupported_status"),
    ],
)
def test_invalid_targets_are_rejected_with_spec_codes(
    status: Any, substatus: Any, code: str
) -> None:
    with pytest.raises(TransitionRejected) as exc:
        parse_target(status, substatus)
    assert exc.value.code == code
    assert not exc.value.conflict


def test_target_checks_itself() -> None:
    with pytest.raises(ValueError, match="invalid pair"):
        Target(S.RESOLVED, SS.ONGOING)


@pytest.mark.parametrize(
    ("current", "target", "activity", "event"),
    [
        (state(), Target(S.RESOLVED, None), "set_resolved", "issue.resolved"),
        (
            state(),
            Target(S.IGNORED, SS.ARCHIVED_FOREVER),
            "set_ignored",
            "issue.ignored",
        ),
        (
            state(S.IGNORED, SS.ARCHIVED_FOREVER),
            Target(S.IGNORED, SS.ARCHIVED_UNTIL_ESCALATING),
            "set_ignored",
            "issue.ignored",
        ),
        (
            state(S.IGNORED, SS.ARCHIVED_UNTIL_ESCALATING),
            Target(S.UNRESOLVED, SS.ESCALATING),
            "set_escalating",
            "issue.escalating",
        ),
        (
            state(S.RESOLVED, None),
            Target(S.UNRESOLVED, SS.REGRESSED),
            "set_regression",
            "issue.regressed",
        ),
        (state(S.UNRESOLVED, SS.NEW), Target(S.UNRESOLVED, SS.REGRESSED), "set_regression", None),
        (
            state(S.UNRESOLVED, SS.ESCALATING),
            Target(S.UNRESOLVED, SS.ONGOING),
            "auto_set_ongoing",
            None,
        ),
        # A person or a detector moving an unresolved issue to ongoing: only leaving
        # escalating is auto_set_ongoing; the issue was unresolved already, so no notification.
        (state(S.UNRESOLVED, SS.NEW), Target(S.UNRESOLVED, SS.ONGOING), "set_unresolved", None),
        (
            state(S.UNRESOLVED, SS.REGRESSED),
            Target(S.UNRESOLVED, SS.ONGOING),
            "set_unresolved",
            None,
        ),
        (
            state(S.RESOLVED, None),
            Target(S.UNRESOLVED, SS.ONGOING),
            "set_unresolved",
            "issue.unresolved",
        ),
        (
            state(S.IGNORED, SS.ARCHIVED_FOREVER),
            Target(S.UNRESOLVED, SS.ONGOING),
            "set_unresolved",
            "issue.unresolved",
        ),
    ],
)
def test_each_change_records_its_activity_type(
    current: IssueState, target: Target, activity: str, event: str | None
) -> None:
    transition = plan_transition(current, target)
    assert transition is not None
    assert (transition.status, transition.substatus) == (target.status, target.substatus)
    assert transition.activity_type == activity
    assert transition.event == event


@pytest.mark.parametrize(
    "current",
    [state(S.UNRESOLVED, SS.ONGOING), state(S.RESOLVED, None), state(S.UNRESOLVED, SS.NEW)],
)
def test_escalating_only_from_ignored(current: IssueState) -> None:
    with pytest.raises(TransitionRejected) as exc:
        plan_transition(current, Target(S.UNRESOLVED, SS.ESCALATING))
    assert exc.value.code == "invalid_transition"
    assert exc.value.conflict


@pytest.mark.parametrize(
    "current",
    [
        state(S.UNRESOLVED, SS.ONGOING),
        state(S.UNRESOLVED, SS.ESCALATING),
        state(S.RESOLVED, None),
        state(S.IGNORED, SS.ARCHIVED_FOREVER),
    ],
)
def test_same_pair_is_no_change(current: IssueState) -> None:
    assert plan_transition(current, Target(current.status, current.substatus)) is None


@pytest.mark.parametrize(
    ("priority", "locked", "expected"),
    [(LOW, False, MEDIUM), (MEDIUM, False, HIGH), (HIGH, False, HIGH), (LOW, True, None)],
)
def test_escalation_raises_priority_unless_locked(
    priority: int, locked: bool, expected: int | None
) -> None:
    current = state(S.IGNORED, SS.ARCHIVED_UNTIL_ESCALATING, priority=priority, locked=locked)
    assert escalation(current).priority == expected


@pytest.mark.parametrize(
    ("substatus", "locked", "expected"),
    [(SS.ESCALATING, False, LOW), (SS.ESCALATING, True, None), (SS.REGRESSED, False, None)],
)
def test_leaving_escalating_for_ongoing_restores_initial_priority(
    substatus: int, locked: bool, expected: int | None
) -> None:
    current = state(S.UNRESOLVED, substatus, priority=HIGH, initial=LOW, locked=locked)
    transition = plan_transition(current, Target(S.UNRESOLVED, SS.ONGOING))
    assert transition is not None
    assert transition.priority == expected


def test_the_jobs_moves_are_the_ordinary_moves_recorded_as_automatic() -> None:
    for sub in AUTO_ONGOING_FROM:
        by_hand = plan_transition(state(S.UNRESOLVED, sub), ONGOING)
        assert by_hand is not None and by_hand.event is None
        assert replace(by_hand, activity_type="auto_set_ongoing") == AUTO_ONGOING
    resolved = plan_transition(state(), Target(S.RESOLVED, None))
    assert resolved is not None and resolved.event == "issue.resolved"
    assert replace(resolved, activity_type="set_resolved_by_age") == RESOLVED_BY_AGE


def test_the_jobs_cutoffs() -> None:
    now = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    assert ongoing_cutoff(now) == datetime(2026, 11, 13, 10, 30, tzinfo=UTC)
    assert resolve_cutoff(now, 36) == datetime(2026, 11, 18, 22, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "substatus", "message"),
    [
        ("muted", "ongoing", "unsupported status 'muted': use unresolved, resolved or ignored"),
        ("ignored", None, "status ignored needs a substatus"),
        (0, "", "status unresolved needs a substatus"),
        ("resolved", "ongoing", "status resolved takes no substatus"),
        ("ignored", "nonsense", "unknown substatus 'nonsense'"),
        ("unresolved", "new", "substatus new is not valid with status unresolved"),
        (2, 3, "substatus ongoing is not valid with status ignored"),
    ],
)
def test_rejections_carry_the_message_the_api_answers(
    status: Any, substatus: Any, message: str
) -> None:
    with pytest.raises(TransitionRejected) as exc:
        parse_target(status, substatus)
    assert exc.value.message == message
    assert str(exc.value) == message


def test_escalating_rejection_names_the_current_status() -> None:
    with pytest.raises(TransitionRejected) as exc:
        plan_transition(state(S.RESOLVED, None), Target(S.UNRESOLVED, SS.ESCALATING))
    assert exc.value.message == "an issue becomes escalating only from ignored, not from resolved"


# -- a person's update (PATCH /issues/{id}) ------------------------------------------------------

ACM = Target(S.IGNORED, SS.ARCHIVED_UNTIL_CONDITION_MET)


@pytest.mark.parametrize(
    ("status", "substatus", "conditions", "expected"),
    [
        (None, None, False, None),
        ("resolved", None, False, Target(S.RESOLVED, None)),
        # ignore_until implies ignored / archived_until_condition_met.
        (None, None, True, ACM),
        ("ignored", None, True, ACM),
        (2, None, True, ACM),
        ("ignored", "archived_until_condition_met", True, ACM),
    ],
)
def test_an_update_asks_for_a_target_or_leaves_the_status(
    status: Any, substatus: Any, conditions: bool, expected: Target | None
) -> None:
    assert parse_update_target(status, substatus, conditions=conditions) == expected


@pytest.mark.parametrize(
    ("status", "substatus", "conditions", "code", "field"),
    [
        (None, "ongoing", False, "invalid_payload", "status"),
        ("resolved", None, True, "invalid_payload", "ignore_until"),
        ("ignored", "archived_forever", True, "invalid_payload", "ignore_until"),
        ("unresolved", None, True, "missing_substatus", None),
        ("snoozed", None, True, "unsupported_status", None),
    ],
)
def test_an_update_that_does_not_fit_together_is_refused(
    status: Any, substatus: Any, conditions: bool, code: str, field: str | None
) -> None:
    with pytest.raises(TransitionRejected) as exc:
        parse_update_target(status, substatus, conditions=conditions)
    assert exc.value.code == code and not exc.value.conflict
    fields = [d["field"] for d in exc.value.details or []]
    assert fields == ([field] if field else [])


def test_new_conditions_rearchive_without_a_notification() -> None:
    archived = state(S.IGNORED, SS.ARCHIVED_UNTIL_CONDITION_MET)
    assert plan_update(archived, ACM, conditions=False) is None
    assert plan_update(archived, ACM, conditions=True) == Transition(
        S.IGNORED, SS.ARCHIVED_UNTIL_CONDITION_MET, "set_ignored", None, None
    )
    # From elsewhere it is the ordinary, notified move.
    moved = plan_update(state(), ACM, conditions=True)
    assert moved == plan_transition(state(), ACM)
    assert moved is not None and moved.event == "issue.ignored"
    with pytest.raises(TransitionRejected) as exc:
        plan_update(state(), Target(S.UNRESOLVED, SS.ESCALATING), conditions=False)
    assert exc.value.conflict and exc.value.code == "invalid_transition"


@pytest.mark.parametrize(
    ("priority", "current", "locked", "expected"),
    [
        (None, MEDIUM, False, None),
        (HIGH, MEDIUM, False, HIGH),
        (HIGH, MEDIUM, True, HIGH),
        # The current priority again locks an unlocked issue; a locked one records nothing.
        (MEDIUM, MEDIUM, False, MEDIUM),
        (MEDIUM, MEDIUM, True, None),
    ],
)
def test_a_set_priority_is_recorded_unless_already_locked_there(
    priority: int | None, current: int, locked: bool, expected: int | None
) -> None:
    assert plan_priority(state(priority=current, locked=locked), priority) == expected
