"""The Kafka consumer's failure handling against the real broker (Tansu), database and ingest.

What is real: the broker, the consumer group and its rebalancing, the dead-letter producer, the
database and its failures (tests/outage.py), the ingest. The consumer under test is the real
``IngestConsumer``; ``Watched`` only records what its hooks saw (assignments, revocations,
batches) and then calls them unchanged.

- Database outage: the batch is retried with a growing back-off while the consumer keeps polling
  (paused), so the group does not evict it even though the outage outlasts
  ``max.poll.interval.ms``; nothing is lost or counted twice.
- Dead-letter delivery error: the DLQ topic's name is one the broker refuses ("Invalid topic"),
  so the batch is never committed; a consumer with a writable DLQ then takes it over.
- Offset-commit failure: ingest is held up (writers blocked for real) for longer than
  ``max.poll.interval.ms``, so librdkafka leaves the group and the broker refuses the commit
  ("Unknown member"); the consumer carries on, and the redelivered batch counts nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402  (after the skip)
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from fastapi.testclient import TestClient

from app.config import Settings
from app.consumer.batch import InboundMessage
from app.consumer.runner import HEADER_CODE, ConsumerConfig, IngestConsumer
from app.context import AppContext
from app.producer import KafkaTransport
from tests import test_kafka
from tests.conftest import FakeClock
from tests.outage import database_outage, writes_blocked
from tests.test_kafka import RunningConsumer, occurrence, read_topic, send, times_seen, wait_for

broker = test_kafka.broker  # the Tansu broker fixture of the Kafka tests

# Short group timeouts, so that a consumer that stops polling is evicted within seconds.
MAX_POLL_MS = 2000
GROUP_OPTIONS = {
    "session.timeout.ms": MAX_POLL_MS,
    "max.poll.interval.ms": MAX_POLL_MS,
    "heartbeat.interval.ms": 300,
}
# Longer than max.poll.interval.ms, with a margin for a loaded machine.
PAST_MAX_POLL = 1.75 * MAX_POLL_MS / 1000


@pytest.fixture
def topic(broker: str) -> str:
    """A fresh one-partition ingest topic and its dead-letter topic."""
    name = f"fail-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker})
    futures = admin.create_topics([NewTopic(name, num_partitions=1), NewTopic(f"{name}-dlq", 1)])
    for future in futures.values():
        future.result(timeout=10)
    return name


@pytest.fixture
def make_ctx(
    admin: TestClient, settings: Settings, clock: FakeClock
) -> Iterator[Callable[..., AppContext]]:
    """Consumer-side contexts on the ``admin`` client's database, with settings changed."""
    from app.issue_types.service import reload_registry
    from app.main import build_context

    made: list[AppContext] = []

    def make(**changes: Any) -> AppContext:
        context = build_context(settings.model_copy(update=changes), clock)
        with context.db.read() as session:
            reload_registry(session, context.registry)
        made.append(context)
        return context

    yield make
    for context in made:
        context.db.dispose()


class Watched(IngestConsumer):
    """The real consumer; its hooks also record what they saw."""

    def __init__(self, ctx: AppContext, config: ConsumerConfig) -> None:
        super().__init__(ctx, config)
        self.assignments = 0
        self.revocations = 0
        self.batches_seen: list[list[int]] = []
        self.handling = threading.Event()

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self.assignments += 1
        super()._on_assign(consumer, partitions)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self.revocations += 1
        super()._on_revoke(consumer, partitions)

    def _handle(self, batch: Sequence[InboundMessage], stop: threading.Event) -> None:
        self.batches_seen.append([m.offset for m in batch])
        self.handling.set()
        super()._handle(batch, stop)


@pytest.fixture
def start(broker: str, topic: str) -> Iterator[Callable[..., RunningConsumer]]:
    """Start a watched consumer of the test topic; every one is stopped afterwards."""
    running: list[RunningConsumer] = []

    def start_one(ctx: AppContext, **config: Any) -> RunningConsumer:
        options = {
            "bootstrap_servers": broker,
            "topic": topic,
            "group": "g",
            "max_batch_size": 50,
            "max_batch_time_ms": 100,
            "retry_initial_seconds": 0.1,
            "retry_max_seconds": 0.4,
            "dlq_timeout_seconds": 10.0,
            "kafka_options": GROUP_OPTIONS,
            **config,
        }
        consumer = RunningConsumer(Watched(ctx, ConsumerConfig(**options)))
        running.append(consumer)
        return consumer

    yield start_one
    for consumer in running:
        if consumer.thread.is_alive():
            consumer.close()


def produce(broker: str, topic: str, fingerprints: list[str]) -> None:
    transport = KafkaTransport(broker, topic)
    for fingerprint in fingerprints:
        send(transport, occurrence(fingerprint))
    transport.close()


def committed(broker: str, topic: str, group: str = "g") -> int:
    """The group's committed offset of the topic's only partition (0 when none)."""
    client = Consumer({"bootstrap.servers": broker, "group.id": group})
    try:
        [offset] = client.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        client.close()
    return max(offset.offset, 0)


def logged(caplog: pytest.LogCaptureFixture, fragment: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "app.consumer.runner" and fragment in r.getMessage()
    ]


def test_database_outage_backs_off_while_polling_and_loses_nothing(
    broker: str,
    topic: str,
    admin: TestClient,
    db_url: str,
    make_ctx: Callable[..., AppContext],
    start: Callable[..., RunningConsumer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app.consumer.runner")
    fingerprints = ["alpha", "alpha", "beta", "gamma", "gamma", "gamma"]
    produce(broker, topic, fingerprints)
    ctx = make_ctx(sqlite_busy_timeout_ms=50, db_connect_timeout_seconds=2)
    with database_outage(db_url):
        running = start(ctx)
        wait_for(lambda: len(logged(caplog, "failed")) >= 2, what="the batch to fail twice")
        # The outage outlasts max.poll.interval.ms: only polling while paused keeps the member.
        outage_ends = time.monotonic() + PAST_MAX_POLL
        wait_for(lambda: time.monotonic() > outage_ends, what="the end of the outage")
    wait_for(
        lambda: running.error or committed(broker, topic) == len(fingerprints),
        what="the batch committed",
    )
    assert running.error is None, repr(running.error)
    consumer = running.consumer
    assert isinstance(consumer, Watched)
    assert (consumer.assignments, consumer.revocations) == (1, 0), "the group rebalanced"
    running.close()
    assert running.error is None

    assert times_seen(admin) == {"alpha": 2, "beta": 1, "gamma": 3}
    assert consumer.processed == len(fingerprints)
    # Every message was handed to ingest once (in one batch or more), none twice.
    assert sum(consumer.batches_seen, []) == list(range(len(fingerprints)))
    delays = [m.rsplit(" ", 1)[-1] for m in logged(caplog, "failed")]
    assert delays[:4] == ["0.1s", "0.2s", "0.4s", "0.4s"], "back-off doubles up to the maximum"


def test_a_dead_letter_topic_that_refuses_writes_keeps_the_batch_uncommitted(
    broker: str,
    topic: str,
    admin: TestClient,
    make_ctx: Callable[..., AppContext],
    start: Callable[..., RunningConsumer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app.consumer.runner")
    raw = Producer({"bootstrap.servers": broker})
    raw.produce(topic, key=b"junk", value=b"{not json")
    raw.flush(10)
    produce(broker, topic, ["zeta"])
    ctx = make_ctx()

    refused = start(ctx, dlq_topic="not a valid topic!")
    wait_for(
        lambda: refused.error or len(logged(caplog, "batch of 2 failed")) >= 3,
        what="dead letters refused",
    )
    refused.close()
    assert refused.error is None, repr(refused.error)
    assert committed(broker, topic) == 0, "a batch whose dead letter was lost was committed"
    assert logged(caplog, "stopping with an uncommitted batch")
    # The broker refuses the dead letter ("Invalid topic"), or the client does at once, once its
    # metadata says the topic is unusable ("Unknown topic"): which comes first varies.
    failures = logged(caplog, "batch of 2 failed")
    assert all("dead letter not" in failure for failure in failures), failures
    assert all("Invalid topic" in f or "Unknown topic" in f for f in failures), failures
    # The good message was ingested; the retries of its batch did not count it again.
    assert times_seen(admin) == {"zeta": 1}

    takeover = start(ctx)
    wait_for(
        lambda: takeover.error or committed(broker, topic) == 2,
        what="the batch committed by the takeover",
    )
    assert takeover.error is None, repr(takeover.error)
    takeover.close()
    [dead] = read_topic(broker, f"{topic}-dlq", 1)
    assert (dead.key(), dead.value()) == (b"junk", b"{not json")
    assert dict(dead.headers())[HEADER_CODE] == b"invalid_json"
    assert times_seen(admin) == {"zeta": 1}


def test_a_refused_offset_commit_is_logged_and_the_redelivery_counts_nothing_twice(
    broker: str,
    topic: str,
    admin: TestClient,
    db_url: str,
    make_ctx: Callable[..., AppContext],
    start: Callable[..., RunningConsumer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app.consumer.runner")
    fingerprints = ["eta", "eta", "theta"]
    produce(broker, topic, fingerprints)
    # Writers wait for the lock (a long busy timeout on SQLite) instead of failing.
    ctx = make_ctx(sqlite_busy_timeout_ms=60_000)
    with writes_blocked(db_url):
        running = start(ctx)
        consumer = running.consumer
        assert isinstance(consumer, Watched)
        wait_for(consumer.handling.is_set, what="the consumer to take the batch")
        # Ingest waits past max.poll.interval.ms: librdkafka leaves the group meanwhile.
        held_until = time.monotonic() + PAST_MAX_POLL
        wait_for(lambda: time.monotonic() > held_until, what="the end of the block")
    wait_for(
        lambda: running.error or committed(broker, topic) == len(fingerprints),
        what="the redelivery committed",
    )
    assert running.error is None, f"a refused offset commit stopped the consumer: {running.error!r}"
    running.close()

    [failure] = logged(caplog, "offset commit failed")
    assert "Unknown member" in failure
    first, *later = consumer.batches_seen
    assert first[0] == 0
    redelivered = {offset for batch in later for offset in batch}
    assert set(first) <= redelivered, "the batch whose commit failed was delivered again"
    assert times_seen(admin) == {"eta": 2, "theta": 1}
