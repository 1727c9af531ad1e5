"""Bounds, names and texts that are defined once and read everywhere else.

Each test pins that a place which used to restate a rule now takes it from its one definition.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import get_args

from app.config import Settings
from app.console import charts
from app.issues import service as issues_service
from app.issues.status import GroupStatus, GroupSubStatus, StatusColumns, status_columns
from app.lifecycle.forecast import epoch_hour
from app.lifecycle.transitions import ACTIVITY_TYPES
from app.notifications.rules import EVENTS, EventName
from app.notifications.schemas import WebhookIn
from app.occurrences.schemas import BatchIn, OccurrenceIn
from app.occurrences.validation import CULPRIT_MAX
from app.schemas import MAX_ID
from app.storable import MAX_INT, MIN_INT, unstorable


def test_the_64_bit_bound_is_one_definition() -> None:
    assert MAX_ID == MAX_INT == 2**63 - 1
    assert MIN_INT == -(2**63)
    # Ids, cursor values and stored JSON integers all stop at the same bound.
    assert issues_service._bigint(MIN_INT) and issues_service._bigint(MAX_INT)
    assert not issues_service._bigint(MIN_INT - 1) and not issues_service._bigint(MAX_INT + 1)
    assert unstorable({"n": MIN_INT}) is None and unstorable({"n": MIN_INT - 1}) is not None


def test_webhooks_subscribe_to_the_events_changes_send() -> None:
    assert get_args(EventName) == EVENTS
    schema = WebhookIn.model_json_schema()
    assert tuple(schema["properties"]["events"]["items"]["enum"]) == EVENTS
    assert "set_regression" in ACTIVITY_TYPES


def test_documented_limits_come_from_their_definitions() -> None:
    culprit = OccurrenceIn.model_json_schema()["properties"]["culprit"]["description"]
    assert f"keeps {CULPRIT_MAX} characters" in culprit
    default = Settings.model_fields["max_batch_items"].default
    assert BatchIn.model_json_schema()["description"].startswith(f"Up to {default:,} ")


def test_the_chart_labels_hours_and_days_by_the_forecast_clock() -> None:
    last = epoch_hour(datetime(2026, 11, 20, 0, 30, tzinfo=UTC))
    window = charts.hour_counts_window({last: 3}, last_hour=last, hours=2)
    drawn = charts.hourly_chart(window, ceilings=[5, 6], start_date=date(2026, 11, 19))
    assert [b.label for b in drawn.bars] == ["2026-11-19 23:00 UTC", "2026-11-20 00:00 UTC"]
    assert [(s.day, s.ceiling) for s in drawn.ceilings] == [("2026-11-19", 5), ("2026-11-20", 6)]


def test_a_status_move_writes_the_same_columns_by_hand_and_in_bulk() -> None:
    now = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    conditions = {"count": 3, "window_seconds": 60, "since": now.isoformat()}
    resolved = status_columns(GroupStatus.RESOLVED, None, ignore_until=conditions, now=now)
    assert resolved.values() == {
        "status": GroupStatus.RESOLVED,
        "substatus": None,
        "resolved_at": now,
        "ignore_until": None,
    }
    acm = GroupSubStatus.ARCHIVED_UNTIL_CONDITION_MET
    archived = status_columns(GroupStatus.IGNORED, acm, ignore_until=conditions, now=now)
    assert (archived.resolved_at, archived.ignore_until) == (None, conditions)
    forever = GroupSubStatus.ARCHIVED_FOREVER
    assert status_columns(GroupStatus.IGNORED, forever, ignore_until=conditions, now=now) == (
        StatusColumns(GroupStatus.IGNORED, forever, None, None)
    )
