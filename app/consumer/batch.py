"""One batch of topic messages: decode, ingest in one transaction, sort out the rejected."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.auth.principal import Principal

if TYPE_CHECKING:
    from app.context import AppContext


class IngestResultLike(Protocol):
    """What the ingest use case answers per message (``ingest.outcomes.IngestResult``)."""

    @property
    def status_code(self) -> int: ...

    @property
    def body(self) -> dict[str, Any]: ...

    @property
    def payload_type(self) -> str: ...


log = logging.getLogger(__name__)

IngestFn = Callable[..., Sequence[IngestResultLike]]


class TransientIngestError(RuntimeError):
    """The ingest answered 5xx for a message: the whole batch is retried later."""


class DeadLetterError(RuntimeError):
    """The dead-letter topic did not acknowledge a rejected message: retry the batch."""


def is_retryable(exc: BaseException) -> bool:
    """Whether an error means "try the same batch again later" rather than "bad message"."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TransientIngestError | DeadLetterError)


@dataclass(frozen=True)
class InboundMessage:
    """A message as read from the topic, independent of the Kafka client."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Rejection:
    """A message that goes to the dead-letter topic, and why."""

    message: InboundMessage
    status_code: int
    code: str
    reason: str
    details: Any = None


@dataclass(frozen=True)
class BatchOutcome:
    """What a processed batch produced: how many were accepted and what was rejected."""

    accepted: int
    rejected: tuple[Rejection, ...]


def decode(value: bytes | None) -> dict[str, Any] | str:
    """A message's JSON object, or the reason (``invalid_json``) it cannot be read."""
    if value is None:
        return "message has no value"
    try:
        decoded = json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        return f"not valid JSON: {exc}"
    if not isinstance(decoded, dict):
        return f"expected a JSON object, got {type(decoded).__name__}"
    return decoded


def default_ingest() -> IngestFn:
    """The real ingest use case (imported late so the consumer module loads on its own)."""
    from app.occurrences.ingest.messages import ingest_messages

    return ingest_messages


def process_batch(
    ctx: AppContext, messages: Sequence[InboundMessage], *, ingest: IngestFn
) -> BatchOutcome:
    """Ingest every decodable message in one call; return what must go to the DLQ.

    Database errors propagate (nothing was committed, the caller retries the batch); so does a
    5xx answer for any message, as TransientIngestError.
    """
    rejected: list[tuple[int, Rejection]] = []
    payloads: list[dict[str, Any]] = []
    sources: list[tuple[int, InboundMessage]] = []
    for index, message in enumerate(messages):
        decoded = decode(message.value)
        if isinstance(decoded, str):
            rejected.append((index, Rejection(message, 400, "invalid_json", decoded)))
            continue
        payloads.append(decoded)
        sources.append((index, message))
    accepted = 0
    if payloads:
        results = ingest(ctx, payloads, principal=Principal.admin())
        if len(results) != len(payloads):
            raise RuntimeError(f"ingest answered {len(results)} results for {len(payloads)}")
        for (index, message), result in zip(sources, results, strict=True):
            if result.status_code >= 500:
                raise TransientIngestError(f"ingest answered {result.status_code}")
            if result.status_code >= 400:
                code, reason, details = _error_of(result.body)
                rejection = Rejection(message, result.status_code, code, reason, details)
                rejected.append((index, rejection))
            else:
                accepted += 1
    rejected.sort(key=lambda item: item[0])
    return BatchOutcome(accepted=accepted, rejected=tuple(r for _, r in rejected))


def _error_of(body: dict[str, Any]) -> tuple[str, str, Any]:
    """The code, message and details of an error body, tolerant of unexpected shapes."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "rejected")
        return code, str(error.get("message") or ""), error.get("details")
    return "rejected", "", None


def process_isolating(
    ctx: AppContext, messages: Sequence[InboundMessage], *, ingest: IngestFn
) -> BatchOutcome:
    """Like process_batch, but a message that makes ingest fail unexpectedly is rejected alone.

    Without this, one message that trips a bug would stop the partition forever (the batch is
    never committed); here it is found by retrying the messages one by one and goes to the DLQ
    with code ``internal_error``, while the others are processed.
    """
    try:
        return process_batch(ctx, messages, ingest=ingest)
    except Exception as exc:
        if is_retryable(exc):
            raise
        if len(messages) == 1:
            log.exception("ingest failed on %s", _where(messages[0]))
            rejection = Rejection(messages[0], 500, "internal_error", f"{type(exc).__name__}")
            return BatchOutcome(accepted=0, rejected=(rejection,))
        log.warning("ingest failed on a batch of %d; retrying one by one", len(messages))
    accepted = 0
    rejected: list[Rejection] = []
    for message in messages:
        outcome = process_isolating(ctx, [message], ingest=ingest)
        accepted += outcome.accepted
        rejected.extend(outcome.rejected)
    return BatchOutcome(accepted=accepted, rejected=tuple(rejected))


def _where(message: InboundMessage) -> str:
    return f"{message.topic}[{message.partition}]@{message.offset}"
