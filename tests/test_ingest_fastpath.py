"""The ingest fast path answers exactly as the FastAPI routes it bypasses (app/fastpath.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import fastpath
from app.config import Settings
from tests.builders import make_key, make_org_with_project, occurrence
from tests.builders import occurrence as make_occurrence
from tests.conftest import ADMIN_TOKEN, auth


def _requests(
    read_only_key: str, other_key: str, fixed_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """(path, httpx arguments) covering answers and errors of both routes."""

    def occurrence(**overrides: Any) -> dict[str, Any]:
        # A fingerprint of this round only: each round creates its own issues.
        return make_occurrence(**{"fingerprint": [f"fp-{fixed_id}"], **overrides})

    big = {"occurrences": [occurrence() for _ in range(3)]}
    return [
        ("/occurrences", {"content": b"{not json"}),
        ("/occurrences", {"json": [1, 2]}),
        ("/occurrences", {"json": occurrence(fingerprint=[])}),
        ("/occurrences", {"json": occurrence(project_id=999)}),
        ("/occurrences", {"json": occurrence(type=424242)}),
        ("/occurrences", {"json": occurrence(id=fixed_id, fingerprint=[fixed_id])}),
        ("/occurrences", {"json": occurrence(id=fixed_id, fingerprint=[fixed_id])}),  # duplicate
        ("/occurrences/batch", {"json": {"items": []}}),
        ("/occurrences/batch", {"json": big}),
        ("/occurrences/batch", {"json": {"occurrences": [occurrence(), {"id": "x"}]}}),
        ("/occurrences", {"json": occurrence(colour="red")}),  # ignored_fields: ["colour"]
        ("/occurrences", {"json": {"fingerprint": ["a"], "project_id": 1, "new_status": 1}}),
        ("/occurrences/batch", {"json": {"occurrences": [occurrence(colour="red", size=2)]}}),
        ("/occurrences", {"json": occurrence(), "headers": {}}),  # no token: 401
        ("/occurrences", {"json": occurrence(), "headers": auth("nope")}),  # unknown: 401
        ("/occurrences", {"json": occurrence(), "headers": auth(read_only_key)}),  # 403
        ("/occurrences", {"json": occurrence(), "headers": auth(other_key)}),  # other org
    ]


def _normalize(value: Any) -> Any:
    """Answers with the random parts (fresh ids, issue numbers) blanked out."""
    if isinstance(value, dict):
        return {
            k: "*" if k in ("occurrence_id", "issue_id", "message") else _normalize(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def _answers(client: TestClient, requests: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    out = []
    for path, kwargs in requests:
        kwargs = dict(kwargs)
        headers = kwargs.pop("headers", {"Authorization": f"Bearer {ADMIN_TOKEN}"})
        response = client.post(path, headers=headers, **kwargs)
        out.append(
            (
                response.status_code,
                response.headers.get("content-type"),
                response.headers.get("retry-after"),
                _normalize(response.json()),
            )
        )
    return out


def test_fast_path_answers_like_the_framework_route(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    read_only = make_key(ctx, scopes=("read",))
    make_org_with_project(ctx, 2, 2)
    other = make_key(ctx, organization_id=2)

    calls: list[str] = []
    original = fastpath.IngestFastPath._principal

    def counting(self: Any, ctx: Any, scope: Any) -> Any:
        found = original(self, ctx, scope)
        calls.append("fast" if found is not None else "framework")
        return found

    monkeypatch.setattr(fastpath.IngestFastPath, "_principal", counting)
    fast = _answers(client, _requests(read_only, other, uuid.uuid4().hex))
    # Unknown, unprivileged or missing tokens go to the framework (which answers 401/403); so
    # do keys not in the key cache (disabled in the tests' settings).
    assert calls == ["fast"] * 13 + ["framework"] * 4

    # The same requests through FastAPI's routes only.
    monkeypatch.setattr(fastpath.IngestFastPath, "_principal", lambda *_: None)
    framework = _answers(client, _requests(read_only, other, uuid.uuid4().hex))
    assert fast == framework
    statuses = [a[0] for a in fast]
    assert statuses == [
        *(422, 422, 422, 404, 422, 202, 202, 422, 200, 200),
        *(202, 422, 200),
        *(401, 401, 403, 403),
    ]
    assert fast[10][3]["ignored_fields"] == ["colour"]
    assert fast[11][3]["error"]["details"] == {"field": "new_status"}
    assert fast[12][3]["results"][0]["ignored_fields"] == ["colour", "size"]


def test_fast_path_renders_rate_limits_and_batch_limits(settings: Settings) -> None:
    from app.main import create_app

    tight = settings.model_copy(
        update={
            "ingest_rate_limit_per_second": 0.01,
            "ingest_rate_limit_burst": 2,
            "max_batch_items": 2,
        }
    )
    with TestClient(create_app(tight), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        too_many = client.post("/occurrences/batch", json={"occurrences": [occurrence()] * 3})
        assert too_many.status_code == 422
        assert too_many.json()["error"]["code"] == "batch_too_large"
        assert client.post("/occurrences", json=occurrence()).status_code == 202
        assert client.post("/occurrences", json=occurrence()).status_code == 202
        limited = client.post("/occurrences", json=occurrence())
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1


def test_cached_api_key_takes_the_fast_path(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"auth_cache_seconds": 60}))
    seen: list[bool] = []
    original = fastpath.IngestFastPath._principal

    def spy(self: Any, ctx: Any, scope: Any) -> Any:
        found = original(self, ctx, scope)
        seen.append(found is not None)
        return found

    monkeypatch.setattr(fastpath.IngestFastPath, "_principal", spy)
    with TestClient(app, raise_server_exceptions=False) as client:
        token = make_key(app.state.ctx, scopes=("ingest",))
        for _ in range(2):
            answer = client.post("/occurrences", json=occurrence(), headers=auth(token))
            assert answer.status_code == 202, answer.text
    # The first request resolves the key through the framework (a query) and caches it.
    assert seen == [False, True]
