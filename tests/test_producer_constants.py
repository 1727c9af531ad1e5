"""The producer re-declares the server's names (it is meant to be copied into detectors without the
server's packages): these tests tie each of its constants to the server's own definition."""

from __future__ import annotations

import inspect

import pytest

from app import cli, producer
from app.errors import RateLimited, ServiceUnavailable
from app.issue_types.registry import PRIORITY_VALUES
from app.issues.status import LEVELS, STATUS_NAMES, SUBSTATUS_NAMES
from app.lifecycle.transitions import TransitionRejected, parse_target


def test_levels_are_the_servers() -> None:
    assert frozenset(LEVELS) == producer.LEVELS


def test_priority_values_are_the_servers() -> None:
    assert producer.PRIORITY_VALUES == PRIORITY_VALUES


def test_status_and_substatus_names_are_the_servers() -> None:
    assert set(producer.STATUS_PAIRS) == set(STATUS_NAMES.values())
    named = set().union(*producer.STATUS_PAIRS.values()) - {None}
    assert named <= set(SUBSTATUS_NAMES.values())


def _server_accepts(status: str, substatus: str | None) -> bool:
    try:
        parse_target(status, substatus)
    except TransitionRejected:
        return False
    return True


def _producer_accepts(status: str, substatus: str | None) -> bool:
    try:
        producer.StatusChange(["x"], 1, new_status=status, new_substatus=substatus)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("status", [*STATUS_NAMES.values(), "closed"])
@pytest.mark.parametrize("substatus", [None, *SUBSTATUS_NAMES.values(), "paused"])
def test_the_producer_accepts_a_status_pair_exactly_when_the_server_does(
    status: str, substatus: str | None
) -> None:
    # A pair the producer lets through and the server refuses would reach the dead-letter topic
    # (or a 422) instead of failing at the detector's call site.
    assert _producer_accepts(status, substatus) == _server_accepts(status, substatus)


def test_default_topic_is_the_consumers() -> None:
    assert inspect.signature(cli.consume).parameters["topic"].default == producer.DEFAULT_TOPIC


def test_the_producer_retries_what_the_server_asks_to_retry() -> None:
    # The two answers the server sends with Retry-After must be among those the producer retries.
    assert {RateLimited.status_code, ServiceUnavailable.status_code} <= producer.RETRY_STATUSES
