"""Database locked or unreachable: writes answer 503 with Retry-After, nothing acknowledged is
lost, and the service recovers by itself (the ingest writer included)."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.auth.principal import Principal
from app.config import Settings
from app.db_errors import database_unavailable
from app.occurrences.ingest import writer as writer_module
from app.occurrences.ingest.outcomes import IngestResult
from app.occurrences.ingest.writer import GroupCommitWriter
from tests.builders import occurrence
from tests.conftest import ADMIN_TOKEN, ON_POSTGRES, assert_error


def _assert_unavailable(response: Any) -> None:
    assert_error(response, 503, "service_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


@pytest.fixture
def short_busy(settings: Settings) -> Iterator[TestClient]:
    """The admin client of an app whose SQLite writers give up after 200 ms."""
    from app.main import create_app

    quick = settings.model_copy(update={"sqlite_busy_timeout_ms": 200})
    with TestClient(create_app(quick), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield client


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite write lock")
def test_locked_sqlite_answers_503_then_recovers(short_busy: TestClient, db_url: str) -> None:
    first = occurrence(fingerprint=["locked"])
    created = short_busy.post("/occurrences", json=first)
    assert created.status_code == 202
    issue_id = created.json()["issue_id"]

    holder = sqlite3.connect(make_url(db_url).database or "", isolation_level=None, timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        blocked = occurrence(fingerprint=["locked"])
        _assert_unavailable(short_busy.post("/occurrences", json=blocked))
        _assert_unavailable(short_busy.post("/occurrences/batch", json={"occurrences": [blocked]}))
        _assert_unavailable(short_busy.patch(f"/issues/{issue_id}", json={"status": "resolved"}))
        change = {
            "fingerprint": ["locked"],
            "project_id": 1,
            "new_status": "ignored",
            "new_substatus": "archived_forever",
        }
        _assert_unavailable(short_busy.post("/status-changes", json=change))
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    again = short_busy.post("/occurrences", json=blocked)
    assert again.status_code == 202, again.text
    assert again.json()["outcome"] == "grouped"
    assert short_busy.patch(f"/issues/{issue_id}", json={"status": "resolved"}).status_code == 200
    issue = short_busy.get(f"/issues/{issue_id}").json()
    assert issue["times_seen"] == 2
    assert issue["status"] == "resolved"


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite write lock")
def test_every_request_waiting_on_the_writer_gets_503_and_the_writer_keeps_working(
    short_busy: TestClient, db_url: str
) -> None:
    holder = sqlite3.connect(make_url(db_url).database or "", isolation_level=None, timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
    statuses: list[int] = []
    payloads = [occurrence(fingerprint=[f"w-{n}"]) for n in range(6)]

    def send(body: dict[str, Any]) -> None:
        statuses.append(short_busy.post("/occurrences", json=body).status_code)

    try:
        threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert statuses == [503] * len(payloads)
    for body in payloads:
        assert short_busy.post("/occurrences", json=body).json()["outcome"] == "created"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def unreachable(settings: Settings) -> Iterator[TestClient]:
    """The admin client of an app pointed at a PostgreSQL port nobody listens on."""
    from app.main import create_app

    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/nowhere"
    down = settings.model_copy(update={"database_url": url, "db_connect_timeout_seconds": 1})
    with TestClient(create_app(down), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield client


def test_unreachable_postgres_answers_503_never_500(unreachable: TestClient) -> None:
    assert unreachable.get("/healthz").status_code == 200
    ready = unreachable.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "unreachable"
    _assert_unavailable(unreachable.post("/occurrences", json=occurrence()))
    _assert_unavailable(
        unreachable.post("/occurrences/batch", json={"occurrences": [occurrence()]})
    )
    _assert_unavailable(unreachable.post("/ingest", json=[occurrence()]))
    _assert_unavailable(unreachable.get("/issues"))
    _assert_unavailable(unreachable.patch("/issues/1", json={"status": "resolved"}))
    metrics = unreachable.get("/metrics")
    assert metrics.status_code == 200
    assert "issue_platform_database_up 0.0" in metrics.text


def _lock_error() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_unavailability_is_told_apart_from_a_bad_statement() -> None:
    assert database_unavailable(_lock_error())
    syntax = OperationalError("SELEC", {}, sqlite3.OperationalError('near "SELEC": syntax error'))
    assert not database_unavailable(syntax)
    assert not database_unavailable(ValueError("x"))


def test_writer_fails_the_whole_group_once_and_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    down = threading.Event()
    down.set()

    def fake_ingest(_ctx: Any, requests: list[tuple[list[Any], Principal]]) -> Any:
        calls.append(len(requests))
        if down.is_set():
            raise _lock_error()
        return [[IngestResult(202, {"n": raw}) for raw in raws] for raws, _ in requests]

    monkeypatch.setattr(writer_module, "ingest_requests", fake_ingest)
    writer = GroupCommitWriter(ctx=None, max_items=100)  # type: ignore[arg-type]
    admin = Principal.admin()

    async def burst() -> list[Any]:
        return await asyncio.gather(
            *(writer.submit([n], admin) for n in range(5)), return_exceptions=True
        )

    failed = asyncio.run(burst())
    assert all(isinstance(r, OperationalError) for r in failed)
    # A group whose database is unavailable is not replayed request by request: each request
    # went into exactly one failed transaction.
    assert sum(calls) == 5
    down.clear()
    answered = asyncio.run(burst())
    assert [r[0].body["n"] for r in answered] == [0, 1, 2, 3, 4]
    writer.close()
    with pytest.raises(Exception, match="shutting down"):
        asyncio.run(writer.submit([9], admin))
