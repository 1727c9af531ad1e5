"""The committed openapi.json equals what the application serves, and declares its security."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN, assert_error, auth

ROOT = Path(__file__).resolve().parent.parent
METHODS = {"get", "put", "post", "patch", "delete"}


def test_committed_openapi_matches_served_schema(client: TestClient) -> None:
    committed = json.loads((ROOT / "openapi.json").read_text())
    served = client.get("/openapi.json").json()
    assert served == committed, "openapi.json is stale: run `make openapi`"


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _concrete(path: str) -> str:
    """The path with every parameter filled in (auth is checked before parameters)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def test_bearer_scheme_is_declared(client: TestClient) -> None:
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The admin token or an API key: `Authorization: Bearer <token>`.",
        }
    }


def test_security_is_declared_exactly_on_the_operations_that_refuse_anonymous_calls(
    client: TestClient,
) -> None:
    """What each operation answers without a token decides whether it must declare security."""
    protected: list[str] = []
    public: list[str] = []
    for method, path, operation in _operations(client.get("/openapi.json").json()):
        response = client.request(method.upper(), _concrete(path))
        name = f"{method.upper()} {path}"
        if response.status_code == 401:
            assert_error(response, 401, "unauthenticated")
            assert operation.get("security") == [{"bearer": []}], name
            assert "401" in operation["responses"], name
            protected.append(name)
        else:
            assert "security" not in operation, f"{name} answered {response.status_code}"
            public.append(name)
    assert sorted(public) == ["GET /healthz", "GET /metrics", "GET /readyz"]
    assert len(protected) > 30  # the whole API, not a handful


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_documentation_pages_are_public(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_redoc_page_loads_the_bundled_script_and_the_schema(client: TestClient) -> None:
    page = client.get("/redoc").text
    assert 'spec-url="/openapi.json"' in page
    assert "/docs-static/redoc.standalone.js" in page
    assert client.get("/docs-static/redoc.standalone.js").status_code == 200


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", f"bearer{ADMIN_TOKEN}"],
)
def test_malformed_authorization_is_the_same_401(client: TestClient, header: str) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/issues", headers=headers)
    error = assert_error(response, 401, "unauthenticated")
    assert error["message"] == "missing bearer token"


@pytest.mark.parametrize("header", [f"Bearer {ADMIN_TOKEN}", f"bearer   {ADMIN_TOKEN}  "])
def test_bearer_scheme_is_case_insensitive_and_spacing_tolerant(
    client: TestClient, header: str
) -> None:
    assert client.get("/issues", headers={"Authorization": header}).status_code == 200
    assert client.get("/issues", headers=auth("not-a-token")).status_code == 401
