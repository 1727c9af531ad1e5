"""Property-based tests (hypothesis) of the pure rules: validation, grouping, noise, transitions,
forecasts and cursors. Small example counts keep the whole file to a few seconds."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.issues import cursor as cursors
from app.issues import fingerprint as fingerprint_rules
from app.issues.status import LEVELS, VALID_PAIRS, GroupStatus, GroupSubStatus
from app.lifecycle import forecast, transitions
from app.lifecycle.transitions import IssueState, Target, TransitionRejected
from app.occurrences import grouping, noise
from app.occurrences.validation import PayloadError, validate_occurrence
from app.storable import unstorable
from tests.builders import occurrence
from tests.conftest import MUTATION_RUN

# Under `make mutate` a surviving mutant runs every property that reaches it: fewer examples
# keep the run within its time (the fixed, derandomized first examples still run).
FAST = settings(
    max_examples=30 if MUTATION_RUN else 150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HEX32 = re.compile(r"[0-9a-f]{32}")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
# Values a field is likely to be given by a confused or hostile sender.
field_values = (
    json_like
    | st.sampled_from(["", " ", "low", "HIGH", "75", "1e400", "nan", "2026-13-01", "user:1"])
    | st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "a\x00"])
    | st.uuids().map(str)
    | st.uuids().map(lambda u: u.hex.upper())
    | st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat)
)
OCCURRENCE_FIELDS = sorted(occurrence())


def attempt(rule: Callable[..., Any], *args: Any) -> tuple[Any, Any]:
    """``(result, None)``, or ``(None, error)`` for the rule's own error; anything else fails."""
    try:
        return rule(*args), None
    except (PayloadError, TransitionRejected) as exc:
        return None, exc


def assert_normalised(valid: Any) -> None:
    """What an accepted occurrence always looks like."""
    assert HEX32.fullmatch(valid.id)
    assert HEX32.fullmatch(valid.event_id)
    assert valid.fingerprint and all(isinstance(e, str) and e for e in valid.fingerprint)
    assert valid.detection_time.tzinfo is not None
    assert valid.detection_time.utcoffset() == timedelta(0)
    assert valid.level in LEVELS
    assert valid.priority in (None, 25, 50, 75)
    assert valid.assignee is None or re.fullmatch(r"(user|team):.+", valid.assignee)
    assert isinstance(valid.evidence_data, dict)
    assert all(set(e) == {"name", "value", "important"} for e in valid.evidence_display)
    if valid.event is not None:
        assert valid.event["event_id"] == valid.event_id
        assert valid.event["project_id"] == valid.project_id
    assert unstorable(valid.evidence_data) is None


# -- validation ---------------------------------------------------------------------------------


@FAST
@given(raw=json_like)
def test_validation_of_any_json_raises_only_payload_error(raw: Any) -> None:
    valid, error = attempt(validate_occurrence, raw)
    if error is not None:
        assert error.code and error.message
    else:
        assert_normalised(valid)


@FAST
@given(
    field=st.sampled_from([*OCCURRENCE_FIELDS, "priority", "initial_issue_priority", "assignee"]),
    value=field_values,
)
def test_one_mangled_field_is_refused_with_payload_error_or_normalised(
    field: str, value: Any
) -> None:
    raw = occurrence(**{field: value})
    valid, error = attempt(validate_occurrence, raw)
    if error is not None:
        assert error.code in {"invalid_payload", "event_project_mismatch", "event_id_mismatch"}
    else:
        assert_normalised(valid)


@FAST
@given(
    key=st.sampled_from(["event_id", "project_id", "platform", "timestamp", "tags"]),
    value=field_values,
)
def test_one_mangled_event_field_raises_only_payload_error(key: str, value: Any) -> None:
    raw = occurrence()
    raw["event"][key] = value
    valid, error = attempt(validate_occurrence, raw)
    if error is None:
        assert_normalised(valid)


@FAST
@given(
    when=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        # Fixed offsets: a named zone's skipped local times do not compare as instants.
        timezones=st.builds(
            timezone,
            st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
                lambda d: timedelta(minutes=d // timedelta(minutes=1))
            ),
        ),
    )
)
def test_detection_time_in_any_zone_is_stored_as_the_same_instant_in_utc(when: datetime) -> None:
    valid, error = attempt(validate_occurrence, occurrence(detection_time=when.isoformat()))
    if error is not None:
        assert error.field == "detection_time"  # before 1970 or past 9999 once in UTC
        return
    assert valid.detection_time == when
    assert valid.detection_time.tzinfo == UTC


# -- grouping -----------------------------------------------------------------------------------

fingerprints = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8)


@FAST
@given(fingerprint=fingerprints)
def test_fingerprint_hashes_are_md5_hex_in_order_without_repeats(fingerprint: list[str]) -> None:
    hashes = fingerprint_rules.fingerprint_hashes(fingerprint)
    assert all(HEX32.fullmatch(h) for h in hashes)
    assert len(hashes) == len(set(hashes)) == len(dict.fromkeys(fingerprint))
    assert hashes[0] == fingerprint_rules.hash_element(fingerprint[0])


@FAST
@given(fingerprint=fingerprints, data=st.data())
def test_first_known_hash_decides_the_issue(fingerprint: list[str], data: st.DataObject) -> None:
    hashes = fingerprint_rules.fingerprint_hashes(fingerprint)
    known_hashes = data.draw(st.lists(st.sampled_from(hashes), unique=True))
    known = {h: i + 1 for i, h in enumerate(known_hashes)}
    decision = grouping.decide(hashes, known)
    first_known = next((h for h in hashes if h in known), None)
    if first_known is not None:
        assert decision.group_id == known[first_known]
        assert decision.primary_hash == first_known
        # Every element no issue has is linked to the one joined; known ones stay put.
        assert decision.link_hashes == tuple(h for h in hashes if h not in known)
    else:
        assert decision.group_id is None
        assert decision.primary_hash == hashes[0]
        assert decision.link_hashes == tuple(hashes[1:])


# -- noise windows ------------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


@FAST
@given(
    times=st.lists(moments, min_size=1, max_size=12),
    ignore_limit=st.integers(min_value=1, max_value=6),
    expiry_seconds=st.integers(min_value=1, max_value=2**31 - 1),
)
def test_noise_window_is_fixed_and_counts_up_to_the_threshold(
    times: list[datetime], ignore_limit: int, expiry_seconds: int
) -> None:
    expiry = timedelta(seconds=expiry_seconds)
    window: noise.Window | None = None
    for t in times:
        admission = noise.admit(window, t, ignore_limit=ignore_limit, expiry=expiry)
        new = admission.window
        assert new.count >= 1
        assert new.started_at < new.ends_at
        assert new.ends_at - new.started_at <= expiry  # shorter only when held at datetime.max
        assert admission.reached == (new.count >= ignore_limit)
        if window is None or t >= window.ends_at:
            assert new.count == 1 and new.started_at == t
            assert admission.restarted == (window is not None)
        else:
            assert (new.count, new.started_at, new.ends_at) == (
                window.count + 1,
                window.started_at,
                window.ends_at,
            )
            assert not admission.restarted
        window = new


@FAST
@given(
    created=st.integers(min_value=0, max_value=100), limit=st.integers(min_value=1, max_value=50)
)
def test_quota_is_used_up_exactly_at_the_limit(created: int, limit: int) -> None:
    assert noise.quota_exceeded(created, limit) == (created >= limit)


# -- transitions --------------------------------------------------------------------------------

status_inputs = st.one_of(
    st.none(),
    st.integers(min_value=-2, max_value=9),
    st.sampled_from(["unresolved", "resolved", "ignored", "RESOLVED", "", " ", "bogus", "1"]),
)
substatus_inputs = st.one_of(
    st.none(),
    st.integers(min_value=-2, max_value=9),
    st.sampled_from([s.name.lower() for s in GroupSubStatus] + ["", "bogus", "7"]),
)
states = st.builds(
    IssueState,
    status=st.sampled_from(list(GroupStatus)),
    substatus=st.sampled_from([None, *GroupSubStatus]),
    priority=st.sampled_from([25, 50, 75]),
    initial_priority=st.sampled_from([25, 50, 75]),
    priority_locked=st.booleans(),
)


@FAST
@given(status=status_inputs, substatus=substatus_inputs)
def test_parse_target_gives_a_valid_pair_or_a_coded_rejection(status: Any, substatus: Any) -> None:
    target, error = attempt(transitions.parse_target, status, substatus)
    if error is not None:
        assert error.code in {
            "unsupported_status",
            "missing_substatus",
            "unexpected_substatus",
            "invalid_substatus",
        }
        return
    sub = None if target.substatus is None else GroupSubStatus(target.substatus)
    assert sub in VALID_PAIRS[GroupStatus(target.status)]
    assert target.substatus != GroupSubStatus.NEW


@FAST
@given(state=states, status=status_inputs, substatus=substatus_inputs)
def test_planned_transition_lands_on_a_valid_pair(
    state: IssueState, status: Any, substatus: Any
) -> None:
    target, error = attempt(transitions.parse_target, status, substatus)
    if error is not None:
        return
    plan, error = attempt(transitions.plan_transition, state, target)
    if error is not None:
        assert error.conflict and error.code == "invalid_transition"
        assert state.status != GroupStatus.IGNORED
        return
    if plan is None:
        assert (state.status, state.substatus) == (target.status, target.substatus)
        return
    Target(plan.status, plan.substatus)  # raises on an invalid pair
    assert plan.activity_type in transitions.ACTIVITY_TYPES
    assert plan.priority in (None, 25, 50, 75)
    if state.priority_locked:
        assert plan.priority is None
    if plan.substatus == GroupSubStatus.ESCALATING:
        assert state.status == GroupStatus.IGNORED


# -- forecasts ----------------------------------------------------------------------------------

counts_strategy = st.one_of(
    st.lists(st.integers(min_value=0, max_value=10**6), max_size=167),
    st.lists(
        st.integers(min_value=0, max_value=10**6),
        min_size=forecast.WINDOW_HOURS,
        max_size=forecast.WINDOW_HOURS,
    ),
)


@FAST
@given(counts=counts_strategy, computed_hour=st.integers(min_value=200, max_value=2_000_000))
def test_ceilings_are_fourteen_non_negative_ints_or_none(
    counts: list[int], computed_hour: int
) -> None:
    ceilings = forecast.forecast_ceilings(counts, computed_hour=computed_hour)
    if not any(counts):
        assert ceilings == []
        return
    assert len(ceilings) == forecast.FORECAST_DAYS
    assert all(isinstance(c, int) and c >= 0 for c in ceilings)
    # No hour already seen would have escalated the issue: every ceiling covers the peak.
    assert min(ceilings) >= max(counts)


@FAST
@given(
    hour_counts=st.dictionaries(
        st.integers(min_value=400_000, max_value=400_400),
        st.integers(min_value=0, max_value=10**4),
        max_size=40,
    ),
    now_hour=st.integers(min_value=400_000, max_value=400_400),
    age_hours=st.integers(min_value=0, max_value=400),
)
def test_computed_forecast_has_fourteen_or_no_ceilings(
    hour_counts: dict[int, int], now_hour: int, age_hours: int
) -> None:
    now = forecast.hour_start(now_hour) + timedelta(minutes=30)
    first_seen = forecast.hour_start(now_hour - age_hours)
    result = forecast.compute_forecast(hour_counts, now=now, first_seen=first_seen)
    assert len(result.ceilings) in (0, forecast.FORECAST_DAYS)
    assert all(isinstance(c, int) and c >= 0 for c in result.ceilings)
    assert result.start_date == now.date()
    day = result.start_date + timedelta(days=age_hours % 30)
    assert forecast.ceiling_on(result.ceilings, result.start_date, day) >= 0


# -- cursors ------------------------------------------------------------------------------------


@FAST
@given(cursor=st.text(max_size=80) | st.binary(max_size=60).map(lambda b: b.hex()))
def test_decoding_any_text_raises_only_bad_cursor(cursor: str) -> None:
    with contextlib.suppress(cursors.BadCursor):
        cursors.decode(cursor, "last_seen")


@FAST
@given(payload=json_like)
def test_decoding_any_base64_json_raises_only_bad_cursor(payload: Any) -> None:
    import base64

    import orjson

    try:
        raw = orjson.dumps(payload)
    except TypeError:  # integers beyond 64 bits: not JSON orjson writes
        assume(False)
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with contextlib.suppress(cursors.BadCursor):
        cursors.decode(text, "last_seen")


@FAST
@given(
    sort=st.sampled_from(["last_seen", "first_seen", "times_seen", "priority"]),
    value=st.integers(min_value=0, max_value=2**62) | moments,
    row_id=st.integers(min_value=1, max_value=2**62) | st.text(max_size=32),
)
def test_cursor_round_trips(sort: str, value: Any, row_id: Any) -> None:
    assert cursors.decode(cursors.encode(sort, value, row_id), sort) == (value, row_id)
    other = "times_seen" if sort != "times_seen" else "priority"
    with pytest.raises(cursors.BadCursor):
        cursors.decode(cursors.encode(sort, value, row_id), other)
