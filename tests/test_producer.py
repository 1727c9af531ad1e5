"""The detector-side producer: checks before sending, message shapes, the HTTP transport."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.producer import (
    HttpTransport,
    IssueEvidence,
    IssueOccurrence,
    PayloadType,
    ProduceError,
    StatusChange,
    build_message,
    produce_occurrence,
    set_default_transport,
)
from tests.conftest import ADMIN_TOKEN

EVENT_ID = "a" * 32


def make_occurrence(**overrides: Any) -> IssueOccurrence:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "project_id": 1,
        "fingerprint": ["slow-query"],
        "issue_title": "Slow DB query",
        "subtitle": "SELECT * FROM t",
        "type": 1001,
        "detection_time": datetime(2026, 11, 2, 12, tzinfo=UTC),
        "event_id": EVENT_ID,
        "evidence_display": [IssueEvidence("query", "SELECT 1", important=True)],
    }
    values.update(overrides)
    return IssueOccurrence(**values)


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, key: str, message: dict[str, Any]) -> None:
        self.sent.append((key, message))

    def flush(self, timeout: float = 10.0) -> None:
        pass

    def close(self) -> None:
        pass


def test_occurrence_message_is_keyed_by_first_fingerprint_and_project() -> None:
    transport = RecordingTransport()
    occurrence = make_occurrence(fingerprint=["a", "b"], project_id=7)
    produce_occurrence(occurrence=occurrence, transport=transport)
    [(key, message)] = transport.sent
    assert key == "a-7"
    assert message["payload_type"] == "occurrence"
    assert message["fingerprint"] == ["a", "b"]
    assert message["detection_time"] == "2026-11-02T12:00:00+00:00"
    assert message["evidence_display"] == [
        {"name": "query", "value": "SELECT 1", "important": True}
    ]
    assert "event" not in message
    json.dumps(message)


def test_dashed_ids_are_sent_as_hex() -> None:
    occurrence = make_occurrence(id="12345678-1234-5678-1234-567812345678")
    assert occurrence.id == "12345678123456781234567812345678"


def test_event_data_travels_with_the_occurrence() -> None:
    event = {"event_id": EVENT_ID, "platform": "python", "timestamp": 1.0}
    _, message = build_message(
        PayloadType.OCCURRENCE, occurrence=make_occurrence(), event_data=event
    )
    assert message["event"] == {**event, "project_id": 1}


def test_event_id_may_come_from_event_data_only() -> None:
    event = {"event_id": str(uuid.UUID(EVENT_ID)), "platform": "python", "timestamp": 1.0}
    _, message = build_message(
        PayloadType.OCCURRENCE, occurrence=make_occurrence(event_id=None), event_data=event
    )
    assert message["event"]["event_id"] == EVENT_ID
    assert "event_id" not in message


def test_mismatched_event_ids_are_refused() -> None:
    event = {"event_id": "b" * 32, "platform": "python", "timestamp": 1.0}
    with pytest.raises(ValueError, match="event id mismatch"):
        build_message(PayloadType.OCCURRENCE, occurrence=make_occurrence(), event_data=event)


def test_mismatched_event_project_is_refused() -> None:
    event = {"event_id": EVENT_ID, "project_id": 2, "platform": "python", "timestamp": 1.0}
    with pytest.raises(ValueError, match="project mismatch"):
        build_message(PayloadType.OCCURRENCE, occurrence=make_occurrence(), event_data=event)


def test_occurrence_payload_needs_an_occurrence() -> None:
    with pytest.raises(ValueError, match="needs an occurrence"):
        produce_occurrence(PayloadType.OCCURRENCE, transport=RecordingTransport())


def test_status_change_payload_needs_a_status_change() -> None:
    with pytest.raises(ValueError, match="needs a status_change"):
        produce_occurrence(
            PayloadType.STATUS_CHANGE, occurrence=make_occurrence(), transport=RecordingTransport()
        )


def test_occurrence_needs_an_event() -> None:
    with pytest.raises(ValueError, match="event_id or event_data"):
        build_message(PayloadType.OCCURRENCE, occurrence=make_occurrence(event_id=None))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("id", "not-a-uuid", "id must be a UUID"),
        ("fingerprint", [], "fingerprint"),
        ("fingerprint", ["ok", ""], "fingerprint"),
        ("fingerprint", "abc", "fingerprint"),
        ("project_id", "1", "project_id"),
        ("type", True, "type"),
        ("level", "loud", "level"),
        ("priority", 40, "priority"),
        ("detection_time", datetime(2026, 1, 1), "timezone-aware"),
        ("evidence_display", [{"name": "x"}], "IssueEvidence"),
    ],
)
def test_broken_occurrences_fail_on_construction(field: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_occurrence(**{field: value})


def test_status_change_message() -> None:
    transport = RecordingTransport()
    change = StatusChange(
        fingerprint=["slow-query"],
        project_id=3,
        new_status="ignored",
        new_substatus="archived_until_escalating",
        activity_data={"why": "noise"},
    )
    produce_occurrence(PayloadType.STATUS_CHANGE, status_change=change, transport=transport)
    [(key, message)] = transport.sent
    assert key == "slow-query-3"
    assert message == {
        "payload_type": "status_change",
        "fingerprint": ["slow-query"],
        "project_id": 3,
        "new_status": "ignored",
        "new_substatus": "archived_until_escalating",
        "activity_data": {"why": "noise"},
    }


def test_status_change_rejects_unknown_status() -> None:
    with pytest.raises(ValueError, match="new_status"):
        StatusChange(fingerprint=["x"], project_id=1, new_status="closed")


@pytest.mark.parametrize(
    ("status", "substatus"),
    [("unresolved", "new"), ("unresolved", None), ("resolved", "ongoing"), ("ignored", "ongoing")],
)
def test_status_change_rejects_a_pair_the_server_refuses(
    status: str, substatus: str | None
) -> None:
    with pytest.raises(
        ValueError, match=f"new_substatus must be one of .* with new_status '{status}'"
    ):
        StatusChange(fingerprint=["x"], project_id=1, new_status=status, new_substatus=substatus)


def test_default_transport_is_used_when_none_is_passed() -> None:
    transport = RecordingTransport()
    set_default_transport(transport)
    try:
        produce_occurrence(occurrence=make_occurrence())
    finally:
        set_default_transport(None)
    assert len(transport.sent) == 1
    with pytest.raises(ValueError, match="no transport"):
        produce_occurrence(occurrence=make_occurrence())


def _http(handler: Any, retries: int = 3) -> HttpTransport:
    client = httpx.Client(base_url="http://ip.test", transport=httpx.MockTransport(handler))
    return HttpTransport("http://ip.test", "tok", retries=retries, backoff_seconds=0, client=client)


def test_http_transport_retries_5xx_and_connection_errors() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            return httpx.Response(503, json={"error": {"code": "unavailable"}})
        return httpx.Response(202, json={"outcome": "created"})

    answer = produce_occurrence(occurrence=make_occurrence(), transport=_http(handler))
    assert answer == {"outcome": "created"}
    assert len(calls) == 3
    assert calls[-1].url.path == "/ingest"
    assert calls[-1].headers["authorization"] == "Bearer tok"
    assert json.loads(calls[-1].content)["payload_type"] == "occurrence"


def test_http_transport_does_not_retry_rejections() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(422, json={"error": {"code": "unknown_issue_type"}})

    with pytest.raises(ProduceError, match="422 unknown_issue_type") as info:
        produce_occurrence(occurrence=make_occurrence(), transport=_http(handler))
    assert info.value.status_code == 422
    assert len(calls) == 1


def test_http_transport_gives_up_after_its_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(ProduceError, match="refused"):
        produce_occurrence(occurrence=make_occurrence(), transport=_http(handler, retries=2))


def test_http_transport_posts_to_the_real_ingest_endpoint(admin: Any) -> None:
    transport = HttpTransport("http://testserver", ADMIN_TOKEN, client=admin)
    event = {"event_id": EVENT_ID, "platform": "python", "timestamp": 1793617200.0}
    occurrence = make_occurrence(type=1)  # "error": no noise threshold
    first = produce_occurrence(occurrence=occurrence, event_data=event, transport=transport)
    assert first is not None
    assert first["outcome"] == "created"
    again = make_occurrence(id=first["occurrence_id"], type=1)
    second = produce_occurrence(occurrence=again, event_data=event, transport=transport)
    assert second is not None
    assert second["outcome"] == "duplicate"
    with pytest.raises(ProduceError) as info:
        produce_occurrence(
            occurrence=make_occurrence(type=987654), event_data=event, transport=transport
        )
    assert info.value.status_code == 422
    assert info.value.body["error"]["code"] == "unknown_issue_type"


def test_http_transport_waits_for_retry_after_on_429(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("app.producer.time.sleep", waits.append)
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(
                429, headers={"Retry-After": "2"}, json={"error": {"code": "rate_limited"}}
            )
        return httpx.Response(202, json={"outcome": "created"})

    answer = produce_occurrence(occurrence=make_occurrence(), transport=_http(handler))
    assert answer == {"outcome": "created"}
    assert waits == [2.0]
    assert json.loads(calls[0].content)["id"] == json.loads(calls[1].content)["id"]
