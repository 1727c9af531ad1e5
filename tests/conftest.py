"""Shared fixtures: a fresh database per test (SQLite file, or PostgreSQL via TEST_DATABASE_URL)."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.context import AppContext
from app.db import Base
from app.migrations import upgrade
from app.notifications import outbox
from app.notifications.targets import IPAddress

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
# `make mutate` (mutmut) sets this in every test session it starts, one per mutant.
MUTATION_RUN = "MUTANT_UNDER_TEST" in os.environ
ADMIN_TOKEN = "test-admin-token"  # noqa: S105
ON_POSTGRES = bool(TEST_DATABASE_URL)


class FakeClock:
    """An injectable clock that tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")
EXAMPLE_ADDRESS = ipaddress.ip_address("93.184.215.14")  # public, as example.com's is


def _fail_unrendered_deliveries(session: Session) -> None:
    assert not outbox.unrendered(session), "queued deliveries committed without render_queued()"


@pytest.fixture(autouse=True)
def queued_deliveries_are_rendered() -> Iterator[None]:
    """Every use case that queues a webhook delivery renders it before its commit."""
    event.listen(Session, "before_commit", _fail_unrendered_deliveries)
    yield
    event.remove(Session, "before_commit", _fail_unrendered_deliveries)


@pytest.fixture(autouse=True)
def example_domains_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook hosts under the example domains resolve to a public address: no DNS needed.

    Registration resolves a receiver's name and refuses one that does not resolve; other
    names still go to the system resolver.
    """
    from app.notifications import egress

    system_resolve = egress.resolve

    def resolve(host: str, port: int) -> list[IPAddress]:
        name = host.rstrip(".")
        if any(name == d or name.endswith(f".{d}") for d in EXAMPLE_DOMAINS):
            return [EXAMPLE_ADDRESS]
        return system_resolve(host, port)

    monkeypatch.setattr(egress, "resolve", resolve)


def _reset_postgres(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database: a template SQLite file, or the PostgreSQL test database."""
    if TEST_DATABASE_URL:
        _reset_postgres(TEST_DATABASE_URL)
        upgrade(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    if MUTATION_RUN:
        return _shared_template()
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return str(path)


def _shared_template() -> str:
    """One migrated SQLite template for a whole `make mutate` run (its working dir, mutants/).

    mutmut runs each mutant's tests in a new pytest session: migrating there would cost each
    mutant about a second and a half. Named by the migrations' content, written atomically.
    """
    versions = sorted((Path(__file__).parents[1] / "alembic" / "versions").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in versions)).hexdigest()[:16]
    path = Path.cwd() / f"template-{digest}.db"
    if not path.exists():
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        upgrade(f"sqlite:///{partial}")
        partial.replace(path)
    return str(path)


def _truncate_postgres(url: str) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def db_url(template_db: str, tmp_path: Path) -> str:
    """A fresh, migrated, empty database for one test."""
    if TEST_DATABASE_URL:
        _truncate_postgres(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    target = tmp_path / "test.db"
    shutil.copyfile(template_db, target)
    return f"sqlite:///{target}"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings of the app under test."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        auth_cache_seconds=0,
        registry_refresh_seconds=0,
    )


@pytest.fixture
def clock() -> FakeClock:
    """The app's clock."""
    return FakeClock()


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> FastAPI:
    """The application under test."""
    from app.main import create_app

    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An unauthenticated client (lifespan started)."""
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def admin(client: TestClient) -> TestClient:
    """The client with the admin token (same app and database as ``client``)."""
    client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    return client


@pytest.fixture
def own_ctx(client: TestClient, settings: Settings, clock: FakeClock) -> Iterator[AppContext]:
    """A context of its own on the test database, as another process would have one (the
    ``client`` fixture migrated and seeded the database)."""
    from app.issue_types.service import reload_registry
    from app.main import build_context

    context = build_context(settings, clock)
    with context.db.read() as session:
        reload_registry(session, context.registry)
    yield context
    context.db.dispose()


def auth(token: str) -> dict[str, str]:
    """Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Check an error answer's status and code; return its error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]
