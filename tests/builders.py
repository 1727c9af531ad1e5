"""Builders for test data, with overrides."""

from __future__ import annotations

import uuid
from typing import Any


def occurrence(**overrides: Any) -> dict[str, Any]:
    """A valid occurrence payload for project 1 and the built-in error type."""
    event_id = overrides.pop("event_id", None) or uuid.uuid4().hex
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "project_id": 1,
        "fingerprint": ["fp-1"],
        "issue_title": "Slow thing",
        "subtitle": "in handler",
        "culprit": "app.views.index",
        "resource_id": None,
        "evidence_data": {"duration_ms": 1234},
        "evidence_display": [
            {"name": "Duration", "value": "1234 ms", "important": True},
            {"name": "Where", "value": "index", "important": False},
        ],
        "type": 1,
        "detection_time": "2026-11-02T11:00:00Z",
        "level": "warning",
        "event": {
            "event_id": event_id,
            "project_id": overrides.get("project_id", 1),
            "platform": "python",
            "timestamp": 1793617200.0,
            "tags": {"env": "prod"},
        },
    }
    body.update(overrides)
    return body
