"""The consumer's batching, dead-letter and commit rules, with a scripted client and ingest.

These drive IngestConsumer with stand-ins for the Kafka client so that failure paths (database
down, DLQ down, rebalance while backing off) can be forced; tests/test_kafka.py runs the same
consumer against a real broker and the real ingest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from app.consumer.batch import InboundMessage, decode
from app.consumer.runner import HEADER_CODE, ConsumerConfig, IngestConsumer, commit_offsets

TOPIC = "ingest-occurrences"


@dataclass(frozen=True)
class Result:
    status_code: int
    body: dict[str, Any]
    payload_type: str = "occurrence"


class FakeMessage:
    def __init__(self, partition: int, offset: int, value: bytes | None) -> None:
        self._partition, self._offset, self._value = partition, offset, value

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> None:
        return None


@dataclass
class FakePartition:
    topic: str
    partition: int


class FakeConsumer:
    """Hands out scripted batches, then sets ``stop``; records commits and pauses."""

    def __init__(self, batches: list[list[FakeMessage]], stop: threading.Event) -> None:
        self.batches = batches
        self.stop = stop
        self.commits: list[dict[tuple[str, int], int]] = []
        self.paused = 0
        self.resumed = 0
        self.closed = False
        self.is_paused = False
        self.on_revoke: Callable[..., None] | None = None
        self.on_consume: Callable[[], None] | None = None

    def subscribe(
        self, topics: list[str], on_assign: Callable[..., None], on_revoke: Callable[..., None]
    ) -> None:
        self.on_revoke = on_revoke

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        if self.on_consume:
            self.on_consume()
        if self.is_paused:
            return []
        if self.batches:
            return self.batches.pop(0)
        self.stop.set()
        return []

    def assignment(self) -> list[FakePartition]:
        return [FakePartition(TOPIC, 0), FakePartition(TOPIC, 1)]

    def pause(self, partitions: list[FakePartition]) -> None:
        self.paused += 1
        self.is_paused = True

    def resume(self, partitions: list[FakePartition]) -> None:
        self.resumed += 1
        self.is_paused = False

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        assert asynchronous is False
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []
        self.fail_next_flush = 0

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.produced.append({"topic": topic, **kwargs})

    def flush(self, timeout: float) -> int:
        if self.fail_next_flush:
            self.fail_next_flush -= 1
            self.produced.clear()
            return 1
        return 0


def msg(partition: int, offset: int, body: Any) -> FakeMessage:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return FakeMessage(partition, offset, value)


def accept_all(ctx: Any, messages: list[dict[str, Any]], *, principal: Any) -> list[Result]:
    results = []
    for message in messages:
        if message.get("bad"):
            error = {"code": "invalid_payload", "message": "bad field", "details": {"f": 1}}
            results.append(Result(422, {"error": error}))
        else:
            results.append(Result(202, {"outcome": "created"}))
    return results


def make(
    batches: list[list[FakeMessage]], ingest: Any = accept_all
) -> tuple[IngestConsumer, FakeConsumer, FakeProducer, threading.Event]:
    stop = threading.Event()
    consumer = FakeConsumer(batches, stop)
    producer = FakeProducer()
    config = ConsumerConfig(
        bootstrap_servers="unused:9092", retry_initial_seconds=0.01, retry_max_seconds=0.02
    )
    runner = IngestConsumer(
        None,  # type: ignore[arg-type]
        config,
        ingest=ingest,
        consumer=consumer,
        dlq_producer=producer,
    )
    return runner, consumer, producer, stop


def test_batch_is_committed_after_ingest_with_rejections_dead_lettered() -> None:
    batch = [msg(0, 5, {"id": 1}), msg(1, 9, b"{nope"), msg(0, 6, {"bad": True})]
    runner, consumer, producer, stop = make([batch])
    runner.run(stop)
    assert consumer.commits == [{(TOPIC, 0): 7, (TOPIC, 1): 10}]
    assert [p["value"] for p in producer.produced] == [b"{nope", b'{"bad": true}']
    assert {p["topic"] for p in producer.produced} == {f"{TOPIC}-dlq"}
    codes = [dict(p["headers"])[HEADER_CODE] for p in producer.produced]
    assert codes == [b"invalid_json", b"invalid_payload"]
    assert runner.processed == 1
    assert runner.dead_lettered == 2
    assert consumer.closed


def test_database_outage_retries_the_same_batch_without_committing() -> None:
    seen: list[list[dict[str, Any]]] = []

    def flaky(ctx: Any, messages: list[dict[str, Any]], *, principal: Any) -> list[Result]:
        seen.append(messages)
        if len(seen) < 3:
            raise OperationalError("INSERT", {}, Exception("database is down"))
        return accept_all(ctx, messages, principal=principal)

    runner, consumer, _, stop = make([[msg(0, 0, {"id": 1}), msg(0, 1, {"id": 2})]], flaky)
    commits_during_outage: list[int] = []
    consumer.on_consume = lambda: commits_during_outage.append(len(consumer.commits))
    runner.run(stop)
    assert len(seen) == 3
    assert seen[0] == seen[1] == seen[2]
    assert consumer.commits == [{(TOPIC, 0): 2}]
    assert consumer.paused >= 1
    assert consumer.resumed == 1
    assert set(commits_during_outage[1:-1]) <= {0}


def test_stop_during_outage_leaves_the_batch_uncommitted() -> None:
    def down(ctx: Any, messages: list[dict[str, Any]], *, principal: Any) -> list[Result]:
        stop.set()
        raise OperationalError("INSERT", {}, Exception("database is down"))

    runner, consumer, producer, stop = make([[msg(0, 0, {"id": 1})]], down)
    runner.run(stop)
    assert consumer.commits == []
    assert producer.produced == []
    assert consumer.closed


def test_revoked_partitions_are_dropped_from_a_waiting_batch() -> None:
    calls: list[list[dict[str, Any]]] = []

    def flaky(ctx: Any, messages: list[dict[str, Any]], *, principal: Any) -> list[Result]:
        calls.append(messages)
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, Exception("database is down"))
        return accept_all(ctx, messages, principal=principal)

    runner, consumer, _, stop = make([[msg(0, 0, {"id": 1}), msg(1, 0, {"id": 2})]], flaky)

    def revoke_partition_one() -> None:
        if calls and consumer.on_revoke:
            consumer.on_revoke(consumer, [FakePartition(TOPIC, 1)])
            consumer.on_consume = None

    consumer.on_consume = revoke_partition_one
    runner.run(stop)
    assert calls[1] == [{"id": 1}]
    assert consumer.commits == [{(TOPIC, 0): 1}]


def test_unacknowledged_dead_letters_retry_the_batch() -> None:
    runner, consumer, producer, stop = make([[msg(0, 0, {"bad": True})]])
    producer.fail_next_flush = 1
    runner.run(stop)
    assert len(producer.produced) == 1
    assert consumer.commits == [{(TOPIC, 0): 1}]


def test_server_error_result_retries_the_batch() -> None:
    calls = 0

    def once_503(ctx: Any, messages: list[dict[str, Any]], *, principal: Any) -> list[Result]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return [Result(503, {"error": {"code": "unavailable"}})]
        return accept_all(ctx, messages, principal=principal)

    runner, consumer, producer, stop = make([[msg(0, 0, {"id": 1})]], once_503)
    runner.run(stop)
    assert calls == 2
    assert producer.produced == []
    assert consumer.commits == [{(TOPIC, 0): 1}]


def test_a_message_that_breaks_ingest_is_isolated() -> None:
    def fragile(ctx: Any, messages: list[dict[str, Any]], *, principal: Any) -> list[Result]:
        if any(m.get("boom") for m in messages):
            raise KeyError("boom")
        return accept_all(ctx, messages, principal=principal)

    batch = [msg(0, 0, {"id": 1}), msg(0, 1, {"boom": True}), msg(0, 2, {"id": 3})]
    runner, consumer, producer, stop = make([batch], fragile)
    runner.run(stop)
    assert runner.processed == 2
    [dead] = producer.produced
    assert dict(dead["headers"])[HEADER_CODE] == b"internal_error"
    assert consumer.commits == [{(TOPIC, 0): 3}]


@pytest.mark.parametrize(
    ("value", "reason"),
    [(None, "no value"), (b"\xff", "JSON"), (b"[1]", "JSON object"), (b"nul", "JSON")],
)
def test_undecodable_values(value: bytes | None, reason: str) -> None:
    result = decode(value)
    assert isinstance(result, str)
    assert reason in result


def test_commit_offsets_are_one_past_the_last_message_per_partition() -> None:
    messages = [InboundMessage(TOPIC, p, o, None, b"{}") for p, o in [(0, 3), (1, 1), (0, 2)]]
    assert commit_offsets(messages) == {(TOPIC, 0): 4, (TOPIC, 1): 2}


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        ConsumerConfig(bootstrap_servers="x", max_batch_size=0)
    assert ConsumerConfig(bootstrap_servers="x", topic="t").dead_letter_topic == "t-dlq"
