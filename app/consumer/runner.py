"""The consume loop: poll a batch, ingest it, dead-letter the rejected, then commit offsets."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.consumer.batch import (
    DeadLetterError,
    InboundMessage,
    IngestFn,
    Rejection,
    default_ingest,
    is_retryable,
    process_isolating,
)
from app.metrics import (
    CONSUMER_COMMIT_FAILURES,
    CONSUMER_LAG,
    CONSUMER_MESSAGES,
    CONSUMER_RETRIES,
)
from app.producer import producer_options

if TYPE_CHECKING:
    from app.context import AppContext

log = logging.getLogger(__name__)

HEADER_CODE = "issue-platform-error-code"
HEADER_MESSAGE = "issue-platform-error-message"
HEADER_STATUS = "issue-platform-error-status"
HEADER_DETAILS = "issue-platform-error-details"
HEADER_SOURCE = "issue-platform-source"
MAX_HEADER_BYTES = 4096


@dataclass(frozen=True)
class ConsumerConfig:
    """Settings of one consumer process (the ``consume`` command's options)."""

    bootstrap_servers: str
    topic: str = "ingest-occurrences"
    group: str = "issue-platform"
    dlq_topic: str | None = None
    max_batch_size: int = 500
    max_batch_time_ms: int = 200
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    dlq_timeout_seconds: float = 30.0
    # Extra librdkafka settings for the consumer and the DLQ producer (security, timeouts);
    # kept out of repr: they may hold sasl.password.
    kafka_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if self.max_batch_time_ms < 1:
            raise ValueError("max_batch_time_ms must be at least 1")
        if self.retry_initial_seconds <= 0 or self.retry_max_seconds < self.retry_initial_seconds:
            raise ValueError("retry delays must be positive and initial <= max")

    @property
    def dead_letter_topic(self) -> str:
        """The DLQ topic: explicit, else ``<topic>-dlq``."""
        return self.dlq_topic or f"{self.topic}-dlq"

    def consumer_options(self) -> dict[str, Any]:
        """librdkafka settings of the consumer."""
        options: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group,
            # Offsets are committed by hand, after the database commit (at-least-once).
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
        options.update(self.kafka_options)
        return options

    def producer_options(self) -> dict[str, Any]:
        """librdkafka settings of the dead-letter producer."""
        options: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, "linger.ms": 5}
        options.update(producer_options(self.kafka_options))
        return options


def to_inbound(message: Any) -> InboundMessage:
    """Copy what the batch logic needs out of a confluent-kafka message."""
    return InboundMessage(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        value=message.value(),
    )


def dead_letter_headers(rejection: Rejection) -> list[tuple[str, bytes]]:
    """Headers that tell a reader of the DLQ why the message is there and where it came from."""
    source = rejection.message
    headers = [
        (HEADER_CODE, rejection.code.encode()),
        (HEADER_MESSAGE, rejection.reason.encode()[:MAX_HEADER_BYTES]),
        (HEADER_STATUS, str(rejection.status_code).encode()),
        (HEADER_SOURCE, f"{source.topic}/{source.partition}/{source.offset}".encode()),
    ]
    if rejection.details is not None:
        details = json.dumps(rejection.details, default=str).encode()
        headers.append((HEADER_DETAILS, details[:MAX_HEADER_BYTES]))
    return headers


def close_producer(producer: Any) -> None:
    """Close a confluent-kafka producer where the client version can (2.x added close())."""
    close = getattr(producer, "close", None)
    if callable(close):
        close()


def commit_offsets(messages: Iterable[InboundMessage]) -> dict[tuple[str, int], int]:
    """The offsets to commit: per partition, one past the last message handled."""
    offsets: dict[tuple[str, int], int] = {}
    for message in messages:
        key = (message.topic, message.partition)
        offsets[key] = max(offsets.get(key, 0), message.offset + 1)
    return offsets


class IngestConsumer:
    """Reads the ingest topic in batches and feeds them to the ingest use case.

    One thread drives the Kafka consumer: rebalance callbacks only run inside ``consume()``, so
    between two polls the partitions of the batch in hand cannot be taken away unnoticed.
    """

    def __init__(
        self,
        ctx: AppContext,
        config: ConsumerConfig,
        *,
        ingest: IngestFn | None = None,
        consumer: Any = None,
        dlq_producer: Any = None,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self._ingest = ingest or default_ingest()
        if consumer is None or dlq_producer is None:
            from confluent_kafka import Consumer, Producer

            consumer = consumer or Consumer(config.consumer_options())
            dlq_producer = dlq_producer or Producer(config.producer_options())
        self._consumer = consumer
        self._producer = dlq_producer
        self._pending: list[InboundMessage] = []
        self._revoked = False
        self.assigned: frozenset[tuple[str, int]] = frozenset()
        self._dlq_failures: list[str] = []
        self.processed = 0
        self.dead_lettered = 0
        self.batches = 0

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; then finish the batch in hand, commit and leave."""
        self._consumer.subscribe(
            [self.config.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        log.info(
            "consuming %s as group %s (dead letters to %s)",
            self.config.topic,
            self.config.group,
            self.config.dead_letter_topic,
        )
        try:
            while not stop.is_set():
                batch = self._poll()
                if batch:
                    self._handle(batch, stop)
                else:
                    # Quiet: the last counts journaled by a burst are folded one interval on.
                    self._fold_if_idle()
        finally:
            self._close()

    def _fold_if_idle(self) -> None:
        """After an empty poll: the counts this process journaled, once due (ADR 0011)."""
        # Imported late, like the ingest use case (default_ingest).
        from app.occurrences.ingest.journal import fold_if_idle

        if self.ctx is None:  # the loop's own tests run it without an application
            return
        try:
            fold_if_idle(self.ctx)
        except Exception:  # the next batch, read or job folds instead
            log.exception("idle counter fold failed")

    def _poll(self) -> list[InboundMessage]:
        raw = self._consumer.consume(
            num_messages=self.config.max_batch_size,
            timeout=self.config.max_batch_time_ms / 1000,
        )
        batch: list[InboundMessage] = []
        for message in raw:
            error = message.error()
            if error is not None:
                # Client-side conditions (broker down, partition EOF) are reported as messages;
                # librdkafka recovers from them by itself.
                log.warning("consumer error: %s", error)
                continue
            batch.append(to_inbound(message))
        return batch

    def _handle(self, batch: Sequence[InboundMessage], stop: threading.Event) -> None:
        """Process a batch until it is done; on transient errors pause, back off, retry."""
        self._pending = list(batch)
        self._revoked = False
        delay = self.config.retry_initial_seconds
        paused = False
        try:
            while self._pending:
                try:
                    outcome = process_isolating(self.ctx, self._pending, ingest=self._ingest)
                    self._dead_letter(outcome.rejected)
                except Exception as exc:
                    if not is_retryable(exc):
                        raise
                    CONSUMER_RETRIES.inc()
                    log.warning(
                        "batch of %d failed (%s); retry in %.1fs", len(self._pending), exc, delay
                    )
                    if stop.is_set():
                        log.warning("stopping with an uncommitted batch; it will be redelivered")
                        return
                    if not paused:
                        self._consumer.pause(self._consumer.assignment())
                        paused = True
                    self._wait(delay, stop)
                    delay = min(delay * 2, self.config.retry_max_seconds)
                    continue
                self._commit(self._pending)
                self.batches += 1
                self.processed += outcome.accepted
                self.dead_lettered += len(outcome.rejected)
                CONSUMER_MESSAGES.labels(result="processed").inc(outcome.accepted)
                CONSUMER_MESSAGES.labels(result="dlq").inc(len(outcome.rejected))
                self._pending = []
        finally:
            self._pending = []
            if paused:
                self._consumer.resume(self._consumer.assignment())

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        """Back off while still polling, so the group does not consider this member dead."""
        deadline = time.monotonic() + seconds
        self._revoked = False
        while not stop.is_set() and not self._revoked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # The assigned partitions are paused, so this returns nothing unless a rebalance
            # handed us new partitions; those messages come after the ones in hand.
            for message in self._poll_paused(min(remaining, 0.5)):
                self._pending.append(message)

    def _poll_paused(self, timeout: float) -> list[InboundMessage]:
        raw = self._consumer.consume(num_messages=self.config.max_batch_size, timeout=timeout)
        last = commit_offsets(self._pending)
        fresh = []
        for message in raw:
            if message.error() is not None:
                continue
            inbound = to_inbound(message)
            if inbound.offset + 1 > last.get((inbound.topic, inbound.partition), 0):
                fresh.append(inbound)
        if fresh:
            self._consumer.pause(self._consumer.assignment())
        return fresh

    def _on_assign(self, _consumer: Any, partitions: list[Any]) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("assigned partitions %s", sorted(p for _, p in self.assigned))

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        # A revoked partition now belongs to another member, which restarts from the committed
        # offset: drop what we hold of it, or it would be processed twice and committed wrongly.
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self.assigned -= gone
        if self._pending:
            log.info("partitions revoked while a batch waits: dropping their messages")
        self._pending = [m for m in self._pending if (m.topic, m.partition) not in gone]
        self._revoked = True

    def _dead_letter(self, rejections: Sequence[Rejection]) -> None:
        """Send rejected messages to the DLQ and wait until the broker has them."""
        if not rejections:
            return
        from confluent_kafka import KafkaException

        self._dlq_failures = []
        for rejection in rejections:
            log.info(
                "dead-lettering %s[%d]@%d: %s",
                rejection.message.topic,
                rejection.message.partition,
                rejection.message.offset,
                rejection.code,
            )
            try:
                self._producer.produce(
                    self.config.dead_letter_topic,
                    value=rejection.message.value,
                    key=rejection.message.key,
                    headers=dead_letter_headers(rejection),
                    on_delivery=self._on_dlq_delivery,
                )
            except KafkaException as exc:
                # E.g. a topic the broker refused before is refused at once from then on.
                raise DeadLetterError(f"dead letter not accepted: {exc}") from exc
        remaining = self._producer.flush(self.config.dlq_timeout_seconds)
        if remaining:
            raise DeadLetterError(f"{remaining} dead letter(s) not acknowledged in time")
        if self._dlq_failures:
            raise DeadLetterError(f"dead letter not delivered: {self._dlq_failures[0]}")

    def _on_dlq_delivery(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._dlq_failures.append(str(error))

    def _commit(self, messages: Sequence[InboundMessage]) -> None:
        """Commit synchronously; a failure only means the batch may be delivered again."""
        from confluent_kafka import KafkaException, TopicPartition

        committed = commit_offsets(messages)
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in committed.items()
        ]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            CONSUMER_COMMIT_FAILURES.inc()
            log.warning("offset commit failed (%s); the batch may be delivered again", exc)
            return
        self._record_lag(committed)

    def _record_lag(self, committed: Mapping[tuple[str, int], int]) -> None:
        """Lag per partition: cached high watermark minus the offset just committed.

        ``cached=True`` reads the watermark librdkafka keeps from its fetches: no broker call.
        """
        from confluent_kafka import TopicPartition

        watermarks = getattr(self._consumer, "get_watermark_offsets", None)
        if watermarks is None:
            return
        for (topic, partition), offset in committed.items():
            try:
                _low, high = watermarks(TopicPartition(topic, partition), cached=True)
            except Exception:  # noqa: S112  (lag is best effort; never fail the batch)
                continue
            if isinstance(high, int) and high >= 0:
                lag = max(0, high - offset)
                CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(lag)

    def _close(self) -> None:
        try:
            self._producer.flush(self.config.dlq_timeout_seconds)
            close_producer(self._producer)
        finally:
            # close() leaves the group at once, so the partitions move without waiting for the
            # session timeout.
            self._consumer.close()
        log.info(
            "consumer closed: %d processed, %d dead-lettered", self.processed, self.dead_lettered
        )
