"""Schema-driven fuzzing of every operation of the served OpenAPI document (schemathesis).

Each operation gets a fresh database and a handful of generated requests (valid and invalid ones)
sent in-process with the admin token; every answer must be non-5xx, documented in the route's
``responses=``, of the documented content type and body schema, and every error must have the
SPEC §10 shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(
    ON_POSTGRES,
    reason="schema fuzzing truncates and re-seeds PostgreSQL per operation: too slow there; "
    "the answers do not depend on the backend (the API tests cover both)",
)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


ROOT = Path(__file__).resolve().parent.parent

# The committed document, which tests/test_openapi.py keeps equal to the served /openapi.json.
# (Loaded at import time: schemathesis' lazy fixture loader does not support this pytest.)
schema = schemathesis.openapi.from_path(ROOT / "openapi.json")


def assert_error_shape(response: Any) -> None:
    """Every error answer is ``{"error": {"code", "message", "details"}}`` (SPEC §10)."""
    if response.status_code < 400:
        return
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str), body


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_answers_within_its_schema(case: Any, admin: TestClient) -> None:
    kwargs = case.as_transport_kwargs(base_url=str(admin.base_url))
    kwargs.pop("base_url", None)
    headers = dict(kwargs.pop("headers", None) or {})
    headers["Authorization"] = admin.headers["Authorization"]
    kwargs.pop("cookies", None)
    method = kwargs.pop("method")
    url = kwargs.pop("url")
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs.pop("json")
    if "data" in kwargs:
        body["content"] = kwargs.pop("data")
    response = admin.request(method, url, headers=headers, params=kwargs.get("params"), **body)
    assert response.status_code < 500, f"{method} {url} → {response.status_code}: {response.text}"
    assert_error_shape(response)
    case.validate_response(response, checks=CHECKS, headers=headers)
