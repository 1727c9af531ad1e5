"""Topic-shaped messages (``payload_type`` occurrence or status_change): ``/ingest`` and Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.auth.principal import Principal
from app.context import AppContext
from app.occurrences.ingest.outcomes import IngestResult, error_result
from app.occurrences.ingest.usecase import ingest_occurrences
from app.status_changes.service import apply_status_change

OCCURRENCE = "occurrence"
STATUS_CHANGE = "status_change"


def _payload_type(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    value = message.get("payload_type", OCCURRENCE)
    if value is None:
        return OCCURRENCE
    return value if value in (OCCURRENCE, STATUS_CHANGE) else None


def ingest_messages(
    ctx: AppContext, messages: Sequence[Any], *, principal: Principal
) -> list[IngestResult]:
    """Process messages in order; consecutive occurrences share one batch transaction."""
    results: list[IngestResult] = []
    run: list[Any] = []

    def flush_run() -> None:
        if run:
            results.extend(
                IngestResult(r.status_code, r.body, OCCURRENCE)
                for r in ingest_occurrences(ctx, run, principal=principal)
            )
            run.clear()

    for message in messages:
        kind = _payload_type(message)
        if kind == OCCURRENCE:
            body = {k: v for k, v in message.items() if k != "payload_type"}
            run.append(body)
            continue
        flush_run()
        if kind is None:
            bad = error_result(
                422,
                "invalid_payload",
                "message must be an object with payload_type occurrence or status_change",
                {"field": "payload_type"},
            )
            results.append(IngestResult(bad.status_code, bad.body, str(_raw_type(message))))
            continue
        results.append(_status_change(ctx, message, principal))
    flush_run()
    return results


def _raw_type(message: Any) -> Any:
    return message.get("payload_type") if isinstance(message, dict) else None


def _status_change(ctx: AppContext, message: dict[str, Any], principal: Principal) -> IngestResult:
    body = {k: v for k, v in message.items() if k != "payload_type"}
    status_code, answer = apply_status_change(ctx, principal, body)
    return IngestResult(status_code, answer, STATUS_CHANGE)
