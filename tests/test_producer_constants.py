"""The producer re-declares the server's names (it is meant to be copied into detectors without the
server's packages): these tests tie each of its constants to the server's own definition."""

from __future__ import annotations

import inspect

from app import cli, producer
from app.errors import RateLimited, ServiceUnavailable
from app.issue_types.registry import PRIORITY_VALUES
from app.issues.status import LEVELS, STATUS_NAMES, SUBSTATUS_NAMES


def test_levels_are_the_servers() -> None:
    assert frozenset(LEVELS) == producer.LEVELS


def test_priority_names_are_the_servers() -> None:
    assert producer.PRIORITY_NAMES == PRIORITY_VALUES


def test_status_and_substatus_names_are_the_servers() -> None:
    assert frozenset(STATUS_NAMES.values()) == producer.STATUSES
    assert frozenset(SUBSTATUS_NAMES.values()) == producer.SUBSTATUSES


def test_default_topic_is_the_consumers() -> None:
    assert inspect.signature(cli.consume).parameters["topic"].default == producer.DEFAULT_TOPIC


def test_the_producer_retries_what_the_server_asks_to_retry() -> None:
    # The two answers the server sends with Retry-After must be among those the producer retries.
    assert {RateLimited.status_code, ServiceUnavailable.status_code} <= producer.RETRY_STATUSES
