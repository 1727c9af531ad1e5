"""The occurrence body every scenario sends (~1.5 KB), as JSON and as wrk Lua fragments."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson

OID = "__OID__"
EID = "__EID__"
FP = "__FP__"
INGEST_TYPE = 1  # "error": no noise window, so every accepted occurrence is counted at once.


def occurrence(
    occurrence_id: str | None = None, event_id: str | None = None, fingerprint: str = "fp-0"
) -> dict[str, Any]:
    """One realistic occurrence of the built-in error type for project 1."""
    return {
        "id": occurrence_id or uuid.uuid4().hex,
        "project_id": 1,
        "fingerprint": [fingerprint],
        "issue_title": "N+1 Query: SELECT * FROM orders WHERE customer_id = %s",
        "subtitle": "in checkout.views.order_history",
        "culprit": "checkout.views.order_history",
        "resource_id": None,
        "evidence_data": {
            "duration_ms": 1234,
            "offender_span_ids": ["a1b2c3d4e5f60718", "1827364554637281", "9f8e7d6c5b4a3921"],
            "parent_span_ids": ["0011223344556677"],
            "op": "db",
            "num_repeating_spans": "12",
            "transaction_name": "/api/0/customers/{customer_id}/orders/",
            "repeating_spans": "db - SELECT * FROM orders WHERE customer_id = %s LIMIT 21",
            "query": (
                "SELECT orders.id, orders.customer_id, orders.created_at, orders.total_cents, "
                "orders.currency, orders.status, orders.shipping_address_id FROM orders "
                "WHERE orders.customer_id = %s ORDER BY orders.created_at DESC LIMIT 21"
            ),
            "stack": "checkout/views.py:88 in order_history > checkout/models.py:214 in orders",
        },
        "evidence_display": [
            {"name": "Offending Spans", "value": "db - SELECT * FROM orders", "important": True},
            {"name": "Transaction", "value": "/api/0/customers/{id}/orders/", "important": False},
            {"name": "Repeating Spans (12)", "value": "SELECT * FROM orders", "important": False},
        ],
        "type": INGEST_TYPE,
        "detection_time": "2026-11-02T11:00:00Z",
        "level": "warning",
        "event": {
            "event_id": event_id or uuid.uuid4().hex,
            "project_id": 1,
            "platform": "python",
            "timestamp": 1793617200.0,
            "received": 1793617200.5,
            "environment": "production",
            "release": "checkout@2.31.4",
            "tags": {
                "env": "prod",
                "region": "eu-west-1",
                "server_name": "web-7f9c6d-2xk4p",
                "transaction": "/api/0/customers/{customer_id}/orders/",
                "browser": "Firefox 131",
                "os": "Linux",
            },
        },
    }


def template() -> bytes:
    """The JSON body with placeholders for the occurrence id, event id and fingerprint."""
    return orjson.dumps(occurrence(OID, EID, FP))


def write_lua_fragments(path: Path) -> int:
    """Write the body as a Lua table of literal pieces around the placeholders; returns its size."""
    raw = template().decode()
    before_oid, rest = raw.split(f'"{OID}"')
    between, rest = rest.split(f'"{FP}"')
    middle, after = rest.split(f'"{EID}"')
    pieces = [before_oid, between, middle, after]
    lua = "return {" + ", ".join(f"[==[{p}]==]" for p in pieces) + "}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(lua)
    return len(raw) - len(OID) - len(EID) - len(FP) + 32 + 32 + len("fp-000")
