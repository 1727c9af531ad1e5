"""A re-sent id of a pending occurrence (stored inside a noise window, no issue yet) is a duplicate.

At-least-once producers and Kafka redelivery send the same occurrence id again. While the type's
noise window keeps the occurrence pending, its stored row has no issue; the duplicate check must
still find it and answer 202 ``duplicate`` — not try to store it again (a unique-key error, 500)
and not count it a second time in the window. Every ingest path is checked: the single and batch
routes (group-commit writer), ``/ingest`` (one message and an array) and the Kafka consumer's
batch step with the real ingest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.consumer.batch import InboundMessage, default_ingest, process_batch
from tests.builders import ctx_of, occurrence

PENDING_TYPE = 1006  # performance_n_plus_one_db_queries: 3 occurrences within 24 hours


def send_single(admin: TestClient, _app: FastAPI, payload: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/occurrences", json=payload)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def send_batch(admin: TestClient, _app: FastAPI, payload: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/occurrences/batch", json={"occurrences": [payload]})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    return result  # type: ignore[no-any-return]


def send_ingest_one(admin: TestClient, _app: FastAPI, payload: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/ingest", json=dict(payload, payload_type="occurrence"))
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def send_ingest_array(admin: TestClient, _app: FastAPI, payload: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/ingest", json=[dict(payload, payload_type="occurrence")])
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["payload_type"] == "occurrence"
    return result  # type: ignore[no-any-return]


_offsets = iter(range(1_000_000))


def send_consumer(app: FastAPI, payload: dict[str, Any]) -> None:
    """The consumer's batch step: a 5xx answer raises (the batch would be retried forever)."""
    message = InboundMessage(
        topic="ingest-occurrences",
        partition=0,
        offset=next(_offsets),
        key=None,
        value=json.dumps(payload).encode(),
    )
    outcome = process_batch(ctx_of(app), [message], ingest=default_ingest())
    assert outcome.accepted == 1 and outcome.rejected == ()


Send = Callable[[TestClient, FastAPI, dict[str, Any]], dict[str, Any]]
PATHS: dict[str, Send] = {
    "single": send_single,
    "batch": send_batch,
    "ingest-one": send_ingest_one,
    "ingest-array": send_ingest_array,
}


def pending_count(admin: TestClient, fingerprint: str) -> int:
    rows = [r for r in admin.get("/pending").json()["data"] if r["fingerprint"] == fingerprint]
    assert len(rows) == 1, rows
    return rows[0]["count"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", list(PATHS))
def test_resent_pending_occurrence_is_a_duplicate(
    admin: TestClient, app: FastAPI, path: str
) -> None:
    send = PATHS[path]
    payload = occurrence(type=PENDING_TYPE, fingerprint=["pending-dup"])
    first = send(admin, app, payload)
    assert first["outcome"] == "pending" and first["issue_id"] is None
    again = send(admin, app, payload)
    assert again["outcome"] == "duplicate", again
    assert again["occurrence_id"] == payload["id"] and again["issue_id"] is None
    assert pending_count(admin, "pending-dup") == 1


@pytest.mark.parametrize("path", list(PATHS))
def test_pending_id_resent_in_the_same_batch_as_a_new_one(
    admin: TestClient, app: FastAPI, path: str
) -> None:
    """The stored pending id next to a fresh one: the fresh one counts, the old one does not."""
    send = PATHS[path]
    payload = occurrence(type=PENDING_TYPE, fingerprint=["pending-mix"])
    send(admin, app, payload)
    fresh = occurrence(type=PENDING_TYPE, fingerprint=["pending-mix"])
    if path in ("batch", "ingest-array"):
        body: Any = {"occurrences": [payload, fresh]} if path == "batch" else [payload, fresh]
        response = admin.post("/occurrences/batch" if path == "batch" else "/ingest", json=body)
        assert response.status_code == 200, response.text
        outcomes = [r["outcome"] for r in response.json()["results"]]
    else:
        outcomes = [send(admin, app, payload)["outcome"], send(admin, app, fresh)["outcome"]]
    assert outcomes == ["duplicate", "pending"]
    assert pending_count(admin, "pending-mix") == 2


def test_api_registered_type_with_noise_window(admin: TestClient, app: FastAPI) -> None:
    response = admin.post(
        "/admin/issue-types",
        json={
            "type_id": 9101,
            "slug": "noisy_custom",
            "description": "Noisy custom type",
            "category": "performance",
            "released": True,
            "noise_config": {"ignore_limit": 2, "expiry_seconds": 3600},
        },
    )
    assert response.status_code == 201, response.text
    payload = occurrence(type=9101, fingerprint=["custom-dup"])
    assert send_single(admin, app, payload)["outcome"] == "pending"
    for send in PATHS.values():
        assert send(admin, app, payload)["outcome"] == "duplicate"
    assert pending_count(admin, "custom-dup") == 1


def test_consumer_redelivery_of_a_pending_occurrence(admin: TestClient, app: FastAPI) -> None:
    """Kafka redelivers a message after a crash before the offset commit: counted once."""
    payload = occurrence(type=PENDING_TYPE, fingerprint=["redelivered"])
    send_consumer(app, payload)
    assert pending_count(admin, "redelivered") == 1
    send_consumer(app, payload)
    assert pending_count(admin, "redelivered") == 1
    assert send_single(admin, app, payload)["outcome"] == "duplicate"
