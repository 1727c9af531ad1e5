"""Health, readiness, docs and error shape."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import assert_error


def test_healthz_needs_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_schema_at_head(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["revision"] == body["head"]


def test_docs_pages_use_bundled_assets(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "/docs-static/" in html
        assert "cdn.jsdelivr.net" not in html
        assert "fonts.googleapis.com" not in html
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-static/redoc.standalone.js").status_code == 200


def test_unknown_route_uses_error_shape(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")


def test_metrics_open_without_metrics_token(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "issue_platform_occurrences_total" in response.text
