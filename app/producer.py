"""Producer for detectors: typed occurrences and status changes, sent over Kafka or HTTP.

The messages are exactly what ``POST /ingest`` and the ``ingest-occurrences`` topic accept
(SPEC §5, §9). Everything is checked before it is sent, so a detector learns about a broken
payload at the call site instead of in the dead-letter topic.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)

DEFAULT_TOPIC = "ingest-occurrences"
LEVELS = frozenset({"debug", "info", "warning", "error", "fatal"})
PRIORITY_VALUES = {"low": 25, "medium": 50, "high": 75}
# The (status, substatus) pairs a status change may ask for, by name: exactly those the server's
# lifecycle.transitions.parse_target accepts (tests/test_producer_constants.py checks every
# pair). "new" is the server's own substatus for a fresh issue: nobody can ask for it.
STATUS_PAIRS: Mapping[str, frozenset[str | None]] = {
    "unresolved": frozenset({"ongoing", "escalating", "regressed"}),
    "ignored": frozenset(
        {"archived_until_escalating", "archived_until_condition_met", "archived_forever"}
    ),
    "resolved": frozenset({None}),
}


class PayloadType(enum.StrEnum):
    """What a message on the ingest topic carries."""

    OCCURRENCE = "occurrence"
    STATUS_CHANGE = "status_change"


class ProduceError(RuntimeError):
    """The transport could not deliver the message, or the service refused it."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


def _hex_uuid(value: str | uuid.UUID, name: str) -> str:
    """A UUID (dashed or 32 hex) as 32 lowercase hex, or ValueError naming the field."""
    try:
        return uuid.UUID(str(value)).hex
    except ValueError:
        raise ValueError(f"{name} must be a UUID, got {value!r}") from None


def _check_priority(value: int | str | None, name: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or (
        value not in PRIORITY_VALUES.values() and value not in PRIORITY_VALUES
    ):
        raise ValueError(f"{name} must be 25, 50, 75, 'low', 'medium' or 'high', got {value!r}")


def _check_fingerprint(fingerprint: Sequence[str]) -> tuple[str, ...]:
    if isinstance(fingerprint, str) or not fingerprint:
        raise ValueError("fingerprint must be a non-empty list of non-empty strings")
    items = tuple(fingerprint)
    if not all(isinstance(item, str) and item for item in items):
        raise ValueError("fingerprint must be a non-empty list of non-empty strings")
    return items


def _check_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")


@dataclass(frozen=True)
class IssueEvidence:
    """One line of evidence shown with the issue."""

    name: str
    value: str
    important: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.value, str):
            raise ValueError("evidence name and value must be strings")

    def to_dict(self) -> dict[str, Any]:
        """The wire form."""
        return {"name": self.name, "value": self.value, "important": self.important}


@dataclass(frozen=True)
class IssueOccurrence:
    """One detection, checked on construction against the rules of SPEC §5."""

    id: str
    project_id: int
    fingerprint: Sequence[str]
    issue_title: str
    subtitle: str
    type: int
    detection_time: datetime | float
    event_id: str | None = None
    evidence_display: Sequence[IssueEvidence] = ()
    evidence_data: Mapping[str, Any] = field(default_factory=dict)
    culprit: str = ""
    resource_id: str | None = None
    level: str = "info"
    priority: int | str | None = None
    assignee: str | None = None

    def __post_init__(self) -> None:
        # Normalised copies are written back with object.__setattr__: the class stays frozen
        # for callers, and equal inputs (dashed or hex ids, lists or tuples) compare equal.
        object.__setattr__(self, "id", _hex_uuid(self.id, "id"))
        if self.event_id is not None:
            object.__setattr__(self, "event_id", _hex_uuid(self.event_id, "event_id"))
        _check_int(self.project_id, "project_id")
        _check_int(self.type, "type")
        object.__setattr__(self, "fingerprint", _check_fingerprint(self.fingerprint))
        for name in ("issue_title", "subtitle", "culprit"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string")
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {sorted(LEVELS)}, got {self.level!r}")
        _check_priority(self.priority, "priority")
        if isinstance(self.detection_time, datetime):
            if self.detection_time.tzinfo is None:
                raise ValueError("detection_time must be timezone-aware")
        elif isinstance(self.detection_time, bool) or not isinstance(
            self.detection_time, int | float
        ):
            raise ValueError("detection_time must be a datetime or epoch seconds")
        evidence = tuple(self.evidence_display)
        if not all(isinstance(item, IssueEvidence) for item in evidence):
            raise ValueError("evidence_display must hold IssueEvidence items")
        object.__setattr__(self, "evidence_display", evidence)
        if not isinstance(self.evidence_data, Mapping):
            raise ValueError("evidence_data must be a mapping")

    def to_dict(self) -> dict[str, Any]:
        """The wire form (without ``event``)."""
        detection = (
            self.detection_time.isoformat()
            if isinstance(self.detection_time, datetime)
            else self.detection_time
        )
        data: dict[str, Any] = {
            "id": self.id,
            "project_id": self.project_id,
            "fingerprint": list(self.fingerprint),
            "issue_title": self.issue_title,
            "subtitle": self.subtitle,
            "culprit": self.culprit,
            "resource_id": self.resource_id,
            "type": self.type,
            "detection_time": detection,
            "level": self.level,
            "evidence_data": dict(self.evidence_data),
            "evidence_display": [item.to_dict() for item in self.evidence_display],
        }
        if self.event_id is not None:
            data["event_id"] = self.event_id
        if self.priority is not None:
            data["priority"] = self.priority
        if self.assignee is not None:
            data["assignee"] = self.assignee
        return data


@dataclass(frozen=True)
class StatusChange:
    """A detector's request to change the status of the issue a fingerprint belongs to."""

    fingerprint: Sequence[str]
    project_id: int
    new_status: str
    new_substatus: str | None = None
    id: str | None = None
    activity_data: Mapping[str, Any] | None = None
    detector_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", _check_fingerprint(self.fingerprint))
        _check_int(self.project_id, "project_id")
        allowed = STATUS_PAIRS.get(self.new_status)
        if allowed is None:
            raise ValueError(
                f"new_status must be one of {sorted(STATUS_PAIRS)}, got {self.new_status!r}"
            )
        if self.new_substatus not in allowed:
            choices = sorted(allowed, key=str)
            raise ValueError(
                f"new_substatus must be one of {choices} with new_status {self.new_status!r},"
                f" got {self.new_substatus!r}"
            )
        if self.id is not None:
            object.__setattr__(self, "id", _hex_uuid(self.id, "id"))

    def to_dict(self) -> dict[str, Any]:
        """The wire form."""
        data: dict[str, Any] = {
            "fingerprint": list(self.fingerprint),
            "project_id": self.project_id,
            "new_status": self.new_status,
            "new_substatus": self.new_substatus,
        }
        if self.id is not None:
            data["id"] = self.id
        if self.activity_data is not None:
            data["activity_data"] = dict(self.activity_data)
        if self.detector_id is not None:
            data["detector_id"] = self.detector_id
        return data


class Transport(Protocol):
    """Where messages go: a Kafka topic or the HTTP ``/ingest`` endpoint."""

    def send(self, key: str, message: dict[str, Any]) -> dict[str, Any] | None:
        """Send one message; the HTTP transport returns the service's answer."""
        ...

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything sent so far is delivered (raises ProduceError otherwise)."""
        ...

    def close(self) -> None:
        """Flush and release resources."""
        ...


def message_key(fingerprint: Sequence[str], project_id: int) -> str:
    """The partition key: ``<fingerprint[0]>-<project_id>`` keeps one issue's messages in order."""
    return f"{fingerprint[0]}-{project_id}"


def build_message(
    payload_type: PayloadType,
    *,
    occurrence: IssueOccurrence | None = None,
    status_change: StatusChange | None = None,
    event_data: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Check the inputs and return ``(key, message)`` as they go on the topic."""
    payload_type = PayloadType(payload_type)
    if payload_type is PayloadType.OCCURRENCE:
        if occurrence is None:
            raise ValueError("payload_type OCCURRENCE needs an occurrence")
        if status_change is not None:
            raise ValueError("payload_type OCCURRENCE takes no status_change")
        message = occurrence.to_dict()
        if event_data is not None:
            message["event"] = _checked_event(occurrence, event_data)
        elif occurrence.event_id is None:
            raise ValueError("an occurrence needs event_id or event_data")
        message["payload_type"] = payload_type.value
        return message_key(occurrence.fingerprint, occurrence.project_id), message
    if status_change is None:
        raise ValueError("payload_type STATUS_CHANGE needs a status_change")
    if occurrence is not None or event_data is not None:
        raise ValueError("payload_type STATUS_CHANGE takes no occurrence or event_data")
    message = status_change.to_dict()
    message["payload_type"] = payload_type.value
    return message_key(status_change.fingerprint, status_change.project_id), message


def _checked_event(occurrence: IssueOccurrence, event_data: Mapping[str, Any]) -> dict[str, Any]:
    """The event as sent; its id and project must agree with the occurrence."""
    event = dict(event_data)
    raw_id = event.get("event_id")
    if raw_id is None:
        raise ValueError("event_data needs an event_id")
    event_id = _hex_uuid(raw_id, "event_data['event_id']")
    if occurrence.event_id is not None and occurrence.event_id != event_id:
        raise ValueError(
            f"event id mismatch: occurrence.event_id is {occurrence.event_id!r} "
            f"but event_data['event_id'] is {event_id!r}"
        )
    project_id = event.setdefault("project_id", occurrence.project_id)
    if project_id != occurrence.project_id:
        raise ValueError(
            f"project mismatch: occurrence.project_id is {occurrence.project_id} "
            f"but event_data['project_id'] is {project_id!r}"
        )
    event["event_id"] = event_id
    return event


_default_transport: Transport | None = None


def set_default_transport(transport: Transport | None) -> None:
    """The transport ``produce_occurrence`` uses when none is passed."""
    global _default_transport
    _default_transport = transport


def produce_occurrence(
    payload_type: PayloadType = PayloadType.OCCURRENCE,
    *,
    occurrence: IssueOccurrence | None = None,
    status_change: StatusChange | None = None,
    event_data: Mapping[str, Any] | None = None,
    transport: Transport | None = None,
) -> dict[str, Any] | None:
    """Check and send one occurrence or status change; returns the HTTP answer, if any."""
    key, message = build_message(
        payload_type, occurrence=occurrence, status_change=status_change, event_data=event_data
    )
    chosen = transport or _default_transport
    if chosen is None:
        raise ValueError("no transport: pass transport= or call set_default_transport()")
    return chosen.send(key, message)


CONSUMER_ONLY_OPTIONS = frozenset(
    {
        "group.id",
        "group.instance.id",
        "enable.auto.commit",
        "auto.offset.reset",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "partition.assignment.strategy",
    }
)


def producer_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Shared librdkafka settings without those only a consumer takes (a producer warns)."""
    return {k: v for k, v in options.items() if k not in CONSUMER_ONLY_OPTIONS}


class KafkaTransport:
    """Sends to the ingest topic with confluent-kafka; delivery is asynchronous until flush().

    librdkafka settings: ``ISSUE_PLATFORM_KAFKA_CONFIG`` first, then ``config``.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = DEFAULT_TOPIC,
        *,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        from confluent_kafka import Producer

        from app.config import get_settings

        self.topic = topic
        # Idempotence keeps retried sends from duplicating or reordering messages per partition.
        options: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 5,
        }
        # ISSUE_PLATFORM_KAFKA_CONFIG (security, timeouts), then this transport's own settings.
        options.update(producer_options(get_settings().kafka_config))
        options.update(config or {})
        self._producer = Producer(options)
        self._lock = threading.Lock()
        self._failures: list[str] = []

    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            with self._lock:
                self._failures.append(str(error))

    def send(self, key: str, message: dict[str, Any]) -> None:
        """Queue one message (returns before delivery; see flush())."""
        value = json.dumps(message, separators=(",", ":")).encode()
        while True:
            try:
                self._producer.produce(
                    self.topic, value=value, key=key.encode(), on_delivery=self._on_delivery
                )
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(0.1)
        self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait for delivery of everything queued; ProduceError names what failed."""
        remaining = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if remaining:
            raise ProduceError(f"{remaining} message(s) not delivered within {timeout}s")
        if failures:
            raise ProduceError(f"{len(failures)} message(s) failed: {failures[0]}")

    def close(self) -> None:
        """Flush what is queued and disconnect."""
        try:
            self.flush()
        finally:
            # Producer.close() exists only in recent confluent-kafka releases.
            close = getattr(self._producer, "close", None)
            if callable(close):
                close()


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 60.0


def _retry_after(response: httpx.Response) -> float:
    """The answer's ``Retry-After`` in seconds (0 when absent or not a number), capped."""
    try:
        return min(MAX_RETRY_AFTER_SECONDS, max(0.0, float(response.headers["retry-after"])))
    except (KeyError, ValueError):
        return 0.0


class HttpTransport:
    """Posts each message to ``POST /ingest``; retries 429, 5xx and connection errors.

    Retries resend the same message, so the same occurrence id: what was stored already is
    answered ``duplicate``. A ``Retry-After`` longer than the backoff is honoured.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        client: httpx.Client | None = None,
    ) -> None:
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._own_client = client is None
        self._client = client or httpx.Client(base_url=base_url, timeout=timeout)
        self._headers = {"Authorization": f"Bearer {token}"}

    def send(self, key: str, message: dict[str, Any]) -> dict[str, Any]:
        """Post one message and return the answer; ProduceError when it is refused."""
        attempt = 0
        while True:
            try:
                response = self._client.post("/ingest", json=message, headers=self._headers)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise ProduceError(f"POST /ingest failed: {exc}") from exc
                log.warning("POST /ingest failed (%s); retrying", exc)
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    return self._answer(response)
                log.warning("POST /ingest answered %s; retrying", response.status_code)
                wait = max(self.backoff_seconds * 2**attempt, _retry_after(response))
                time.sleep(wait)
                attempt += 1
                continue
            time.sleep(self.backoff_seconds * 2**attempt)
            attempt += 1

    @staticmethod
    def _answer(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            code = body.get("error", {}).get("code") if isinstance(body, dict) else None
            raise ProduceError(
                f"POST /ingest answered {response.status_code} {code or ''}".strip(),
                status_code=response.status_code,
                body=body,
            )
        if not isinstance(body, dict):
            raise ProduceError("POST /ingest answered with a non-object body", body=body)
        return body

    def flush(self, timeout: float = 10.0) -> None:
        """Nothing to do: every send is synchronous."""

    def close(self) -> None:
        """Close the HTTP client if this transport created it."""
        if self._own_client:
            self._client.close()
