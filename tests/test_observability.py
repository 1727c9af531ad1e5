"""Request ids, logs (text and JSON) and the metrics exposed on /metrics."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.logs import REQUEST_ID, JsonFormatter, TextFormatter, log_config, request_id_from
from app.models import WebhookDelivery
from tests.builders import occurrence
from tests.conftest import ADMIN_TOKEN


def test_valid_request_id_is_kept_and_echoed(admin: TestClient) -> None:
    response = admin.get("/healthz", headers={"X-Request-ID": "abc.DEF_123-x"})
    assert response.headers["X-Request-ID"] == "abc.DEF_123-x"


@pytest.mark.parametrize("bad", [b"", b"has space", b"x" * 129, b"semi;colon", "\u00fc".encode()])
def test_invalid_request_id_is_replaced(admin: TestClient, bad: bytes) -> None:
    response = admin.get("/healthz", headers={"X-Request-ID": bad})
    echoed = response.headers["X-Request-ID"]
    assert echoed.encode() != bad and len(echoed) == 32


def test_request_id_is_generated_for_every_answer_errors_included(admin: TestClient) -> None:
    ids = {admin.get("/issues/999999").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert admin.post("/occurrences", content=b"{").headers["X-Request-ID"]
    assert request_id_from("y" * 128) == "y" * 128


def _metric_lines(client: TestClient, name: str) -> list[str]:
    text = client.get("/metrics").text
    return [line for line in text.splitlines() if line.startswith(name)]


def test_latency_is_labelled_by_route_template_not_raw_path(admin: TestClient) -> None:
    admin.get("/issues/123456")
    admin.get("/issues/654321")
    admin.get("/no/such/path/9")
    lines = _metric_lines(admin, "issue_platform_request_seconds_count")
    assert any('route="/issues/{issue_id}"' in line and 'method="GET"' in line for line in lines)
    assert not any("123456" in line or "654321" in line for line in lines)
    assert any('route="unrouted"' in line for line in lines)
    statuses = _metric_lines(admin, "issue_platform_requests_total")
    assert any('route="/issues/{issue_id}"' in s and 'status="404"' in s for s in statuses)


def test_occurrence_and_batch_metrics_are_exposed(admin: TestClient) -> None:
    admin.post("/occurrences", json=occurrence())
    text = admin.get("/metrics").text
    assert 'issue_platform_occurrences_total{outcome="created",type="1"}' in text
    assert "issue_platform_ingest_batch_size_count" in text
    assert "issue_platform_database_up 1.0" in text


def test_outbox_depth_is_read_at_scrape_time(admin: TestClient, app: FastAPI) -> None:
    hook = admin.post(
        "/admin/projects/1/webhooks",
        json={
            "url": "https://hooks.example.com/x",
            "secret": "s3cret-value",
            "events": ["issue.created"],
        },
    )
    assert hook.status_code == 201, hook.text
    before = _metric_lines(admin, "issue_platform_webhook_outbox_pending")
    assert before == ["issue_platform_webhook_outbox_pending 0.0"]
    admin.post("/occurrences", json=occurrence())
    with app.state.ctx.db.read() as session:
        pending = session.query(WebhookDelivery).filter_by(state="pending").count()
    assert pending >= 1
    after = _metric_lines(admin, "issue_platform_webhook_outbox_pending")
    assert after == [f"issue_platform_webhook_outbox_pending {float(pending)}"]
    assert _metric_lines(admin, "issue_platform_webhook_outbox_due")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_json_logs_carry_the_request_id_and_never_the_token(
    settings: Settings, captured: io.StringIO
) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"access_log": True}))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/occurrences",
            json=occurrence(),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Request-ID": "req-42"},
        )
        assert response.status_code == 202
    records = [orjson.loads(line) for line in captured.getvalue().splitlines() if line]
    access = [r for r in records if r["logger"] == "app.access"]
    assert access, records
    assert access[0]["request_id"] == "req-42"
    assert access[0]["route"] == "/occurrences"
    assert access[0]["status"] == 202
    assert access[0]["duration_ms"] >= 0
    assert ADMIN_TOKEN not in captured.getvalue()


def test_formatters_outside_a_request() -> None:
    record = logging.LogRecord("app.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    data = orjson.loads(JsonFormatter().format(record))
    assert data["message"] == "hello you" and data["level"] == "WARNING"
    assert "request_id" not in data
    assert "[-] hello you" in TextFormatter().format(record)
    token = REQUEST_ID.set("abc")
    try:
        assert "[abc] hello you" in TextFormatter().format(record)
        assert orjson.loads(JsonFormatter().format(record))["request_id"] == "abc"
    finally:
        REQUEST_ID.reset(token)


def test_log_config_routes_uvicorn_through_the_chosen_formatter(settings: Settings) -> None:
    config = log_config(settings.model_copy(update={"log_format": "json"}))
    assert config["formatters"]["default"]["()"] == "app.logs.JsonFormatter"
    assert config["loggers"]["uvicorn.error"]["propagate"] is True
    assert log_config(settings)["formatters"]["default"]["()"] == "app.logs.TextFormatter"
    assert Settings(log_format="JSON", log_level="debug").log_level == "DEBUG"  # type: ignore[arg-type]


def test_unexpected_error_answer_and_log_carry_the_request_id(
    app: FastAPI, captured: io.StringIO
) -> None:
    @app.get("/boom-for-test")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom-for-test", headers={"X-Request-ID": "rid-500"})
        assert response.status_code == 500
        assert response.headers["X-Request-ID"] == "rid-500"
        lines = _metric_lines(client, "issue_platform_requests_total")
    records = [orjson.loads(line) for line in captured.getvalue().splitlines() if line]
    assert any(r.get("request_id") == "rid-500" and "exception" in r for r in records), records
    assert any('route="/boom-for-test"' in s and 'status="500"' in s for s in lines)
