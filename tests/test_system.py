"""Health, readiness, docs and error shape."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import FakeClock, assert_error


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


def test_body_over_the_limit_is_413_with_or_without_a_length(admin: TestClient) -> None:
    limit = admin.app.state.ctx.settings.max_body_bytes  # type: ignore[attr-defined]
    big = b'{"x": "' + b"a" * (limit + 10) + b'"}'
    response = admin.post("/occurrences", content=big, headers={"content-type": "application/json"})
    assert_error(response, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    chunked = admin.post(
        "/occurrences", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in chunked.request.headers
    assert_error(chunked, 413, "payload_too_large")


def test_batch_routes_have_the_larger_limit(admin: TestClient) -> None:
    settings = admin.app.state.ctx.settings  # type: ignore[attr-defined]
    body = {"occurrences": [], "pad": "a" * (settings.max_body_bytes + 10)}
    assert admin.post("/occurrences/batch", json=body).status_code == 200
    too_big = {"occurrences": [], "pad": "a" * (settings.max_batch_body_bytes + 10)}
    assert_error(admin.post("/occurrences/batch", json=too_big), 413, "payload_too_large")


def test_metrics_token_guards_metrics_when_set(settings: Settings, clock: FakeClock) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"metrics_token": "m-secret"}), clock=clock)
    with TestClient(app) as c:
        assert_error(c.get("/metrics"), 401, "unauthenticated")
        assert c.get("/metrics", headers={"Authorization": "Bearer m-secret"}).status_code == 200


def test_validation_errors_of_fastapi_use_the_error_shape(admin: TestClient) -> None:
    error = assert_error(admin.get("/issues", params={"limit": "many"}), 422, "invalid_payload")
    assert error["details"][0]["field"] == "limit"


def test_admin_api_is_never_open(client: TestClient) -> None:
    assert_error(client.get("/admin/organizations"), 401, "unauthenticated")
