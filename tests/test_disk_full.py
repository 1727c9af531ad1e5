"""A database that cannot write (disk full, read-only) shows in /readyz, and the ingest writer
answers a failed group at once instead of replaying its requests one by one.

The failures are SQLite's and PostgreSQL's own errors, produced for real:

- SQLite ``PRAGMA max_page_count`` at the file's current size: "database or disk is full"
  (SQLITE_FULL), the error a full disk gives;
- SQLite ``PRAGMA query_only``: "attempt to write a readonly database" (SQLITE_READONLY);
- PostgreSQL ``default_transaction_read_only`` on the database: ReadOnlySqlTransaction (25006).

A full disk on PostgreSQL (DiskFull, 53100) cannot be produced here; its classification is
checked on the driver's exception class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import psycopg.errors
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from app.db_errors import WriteHealth, cannot_write, database_unavailable
from app.occurrences.ingest import writer as writer_module
from tests.builders import occurrence
from tests.conftest import ADMIN_TOKEN, ON_POSTGRES, assert_error, auth

sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="SQLite pragmas")
postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="needs TEST_DATABASE_URL")

CONCURRENT = 20
BIG = "x" * 20_000  # overflow pages: an insert must grow the file


def _on_every_connection(engine: Engine, *pragmas: str) -> Callable[[Any, Any], None]:
    """Run ``pragmas`` on every connection of ``engine`` (pooled ones are closed first)."""

    def hook(dbapi_conn: Any, _record: Any) -> None:
        for pragma in pragmas:
            dbapi_conn.execute(pragma)

    event.listen(engine, "connect", hook)
    engine.dispose()
    return hook


def _back_to_normal(engine: Engine, hook: Callable[[Any, Any], None]) -> None:
    event.remove(engine, "connect", hook)
    engine.dispose()


def _fill_disk(engine: Engine) -> Callable[[Any, Any], None]:
    """From now on the database file cannot grow: SQLite's "database or disk is full"."""
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    return _on_every_connection(engine, f"PRAGMA max_page_count={int(pages or 1)}")


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of requests in each ingest transaction the writer attempts."""
    sizes: list[int] = []
    real = writer_module.ingest_requests

    def counting(ctx: Any, requests: Any) -> Any:
        sizes.append(len(requests))
        return real(ctx, requests)

    monkeypatch.setattr(writer_module, "ingest_requests", counting)
    return sizes


def _post_concurrently(
    app: FastAPI, bodies: list[Any]
) -> Callable[[], Awaitable[list[httpx.Response]]]:
    """POST /occurrences from many coroutines at once (run it in the app's own event loop)."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=auth(ADMIN_TOKEN)
        ) as client:
            return list(
                await asyncio.gather(*(client.post("/occurrences", json=b) for b in bodies))
            )

    return run


def _big_occurrences(n: int) -> list[dict[str, Any]]:
    return [occurrence(fingerprint=[f"full-{i}"], evidence_data={"blob": BIG}) for i in range(n)]


def _readyz(client: TestClient) -> tuple[int, str]:
    response = client.get("/readyz")
    return response.status_code, response.json()["database"]


@sqlite_only
def test_full_disk_turns_readyz_503_and_the_writer_does_not_replay(
    app: FastAPI, admin: TestClient, attempts: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    engine = app.state.ctx.db.engine
    assert _readyz(admin) == (200, "ok")
    hook = _fill_disk(engine)

    responses = admin.portal.call(_post_concurrently(app, _big_occurrences(CONCURRENT)))

    for response in responses:
        assert_error(response, 503, "service_unavailable")
    # Each request was tried once, in its group's transaction: none was replayed alone.
    assert sum(attempts) == CONCURRENT, attempts
    assert max(attempts) > 1, "the requests never formed a group; the test proves nothing"
    assert not [r for r in caplog.records if "replaying" in r.getMessage()]
    writer_lines = [r for r in caplog.records if r.name == "app.occurrences.ingest.writer"]
    assert len(writer_lines) <= len(attempts)  # at most one line per group
    assert any("full" in r.getMessage() for r in writer_lines)
    assert _readyz(admin) == (503, "read_only")
    # Other writes fail the same way, reads go on.
    assert admin.get("/issues").status_code == 200

    _back_to_normal(engine, hook)
    response = admin.post("/occurrences", json=occurrence(evidence_data={"blob": BIG}))
    assert response.status_code == 202, response.text
    assert _readyz(admin) == (200, "ok")


@sqlite_only
def test_read_only_sqlite_turns_readyz_503_until_a_write_succeeds(
    app: FastAPI, admin: TestClient
) -> None:
    engine = app.state.ctx.db.engine
    response = admin.post("/occurrences", json=occurrence())
    assert response.status_code == 202, response.text
    issue_id = response.json()["issue_id"]
    hook = _on_every_connection(engine, "PRAGMA query_only=ON")

    # A write outside the ingest writer (triage) is noticed too.
    patch = admin.patch(f"/issues/{issue_id}", json={"status": "resolved"})
    assert_error(patch, 503, "service_unavailable")
    assert _readyz(admin) == (503, "read_only")
    assert_error(admin.post("/occurrences", json=occurrence()), 503, "service_unavailable")

    _back_to_normal(engine, hook)
    patch = admin.patch(f"/issues/{issue_id}", json={"status": "resolved"})
    assert patch.status_code == 200, patch.text
    assert _readyz(admin) == (200, "ok")


@pytest.fixture
def read_only_postgres(db_url: str) -> Iterator[Callable[[bool], None]]:
    """Switch the test database's ``default_transaction_read_only`` on and off."""
    name = make_url(db_url).database
    admin_engine = create_engine(db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def switch(on: bool) -> None:
        with admin_engine.connect() as conn:
            if on:
                conn.execute(
                    text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
                )
            else:
                # This session started read-only too: writable again first.
                conn.execute(text("SET default_transaction_read_only = off"))
                conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))

    try:
        yield switch
    finally:
        switch(False)
        admin_engine.dispose()


@postgres_only
def test_read_only_postgres_turns_readyz_503_and_back(
    app: FastAPI, admin: TestClient, read_only_postgres: Callable[[bool], None]
) -> None:
    engine = app.state.ctx.db.engine
    response = admin.post("/occurrences", json=occurrence())
    assert response.status_code == 202, response.text
    issue_id = response.json()["issue_id"]
    read_only_postgres(True)
    engine.dispose()  # the setting applies to new sessions

    assert_error(admin.post("/occurrences", json=occurrence()), 503, "service_unavailable")
    assert _readyz(admin) == (503, "read_only")
    patch = admin.patch(f"/issues/{issue_id}", json={"status": "resolved"})
    assert_error(patch, 503, "service_unavailable")
    assert admin.get("/issues").status_code == 200

    read_only_postgres(False)
    engine.dispose()
    response = admin.post("/occurrences", json=occurrence())
    assert response.status_code == 202, response.text
    assert _readyz(admin) == (200, "ok")


def _wrapped(orig: Exception) -> DBAPIError:
    return DBAPIError.instance("INSERT ...", {}, orig, psycopg.Error)


@pytest.mark.parametrize(
    ("orig", "kind"),
    [
        (psycopg.errors.DiskFull("could not extend file"), "full"),
        (psycopg.errors.ReadOnlySqlTransaction("read-only transaction"), "read_only"),
        (psycopg.errors.IoError("could not write block"), "io_error"),
    ],
)
def test_postgres_errors_of_a_database_that_cannot_write(orig: Exception, kind: str) -> None:
    error = _wrapped(orig)
    assert cannot_write(error) == kind
    assert database_unavailable(error)


def test_a_request_s_own_errors_are_not_the_database_s() -> None:
    for orig in (
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.errors.NumericValueOutOfRange("out of range"),
        psycopg.errors.UntranslatableCharacter("nul"),
    ):
        assert cannot_write(_wrapped(orig)) is None
        assert not database_unavailable(_wrapped(orig))


def test_write_health_clears_on_success_or_after_the_hold() -> None:
    now = [1000.0]
    health = WriteHealth(clock=lambda: now[0])
    assert health.failing() is None
    health.failed("full")
    assert health.failing() == "full"
    health.succeeded()
    assert health.failing() is None
    health.failed("read_only")
    now[0] += WriteHealth.HOLD_SECONDS - 1
    assert health.failing() == "read_only"
    # No failure for a while (no writes came, e.g. the balancer took the process out): try again.
    now[0] += 1
    assert health.failing() is None
