"""The ingest transaction: a connection with the ORM session opened only when needed (issue 14).

- The common occurrence (a released type, no webhook, no regression) is ingested without any ORM
  session; the ones that need it (a noise window here) open it on the same connection, so its
  rows and the pipeline's commit or roll back together.
- A commit that stored occurrences tells ``/readyz``'s write health the database writes again,
  also on the consumer's path (no group-commit writer there).
- SQLite's ``BEGIN IMMEDIATE`` goes straight to the driver, yet a failure still comes back as
  SQLAlchemy's error, through the engine's ``handle_error`` hook.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from app.auth.principal import Principal
from app.context import AppContext
from app.db import Database, create_db_engine
from app.db_errors import database_unavailable
from app.models import Group, Occurrence, PendingWindow
from app.occurrences.ingest import batch as batch_module
from app.occurrences.ingest import usecase
from app.occurrences.ingest.usecase import ingest_occurrences
from tests.builders import occurrence
from tests.conftest import ON_POSTGRES

PENDING_TYPE = 1006  # performance_n_plus_one_db_queries: 3 occurrences within 24 hours


@pytest.fixture
def ctx(own_ctx: AppContext) -> AppContext:
    """A context of its own on the test database."""
    return own_ctx


def _outcomes(ctx: AppContext, *items: dict[str, Any]) -> list[str]:
    results = ingest_occurrences(ctx, list(items), principal=Principal.admin())
    return [str(r.body.get("outcome", r.body)) for r in results]


def _count(ctx: AppContext, model: Any) -> int:
    with ctx.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_common_occurrences_open_no_orm_session(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_session(_txn: Any) -> Any:
        raise AssertionError("the ORM session was opened")

    monkeypatch.setattr(batch_module.Txn, "session", property(no_session))
    # A registry older than its refresh interval is reloaded through the session (rarely).
    monkeypatch.setattr(usecase, "registry_stale", lambda _ctx: False)
    first = occurrence(fingerprint=["plain"])
    again = occurrence(fingerprint=["plain"])
    assert _outcomes(ctx, first, again) == ["created", "grouped"]
    assert _outcomes(ctx, first) == ["duplicate"]
    assert _count(ctx, Occurrence) == 2


def test_a_noise_window_opens_the_session_in_the_same_transaction(ctx: AppContext) -> None:
    assert _outcomes(ctx, occurrence(type=PENDING_TYPE, fingerprint=["noisy"])) == ["pending"]
    assert _count(ctx, PendingWindow) == 1  # the ORM's row, committed with the pipeline's
    assert _count(ctx, Occurrence) == 1


def test_the_orm_rows_and_the_pipeline_rows_roll_back_together(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after both wrote (the window by the ORM, the occurrence by the cursor)."""
    real_write = usecase.write

    def write_then_fail(batch: Any) -> None:
        real_write(batch)
        assert batch.txn.session_opened
        batch.session.flush()
        raise RuntimeError("after the writes")

    monkeypatch.setattr(usecase, "write", write_then_fail)
    with pytest.raises(RuntimeError):
        _outcomes(
            ctx,
            occurrence(type=PENDING_TYPE, fingerprint=["rolled-back"]),
            occurrence(fingerprint=["rolled-back-too"]),
        )
    assert _count(ctx, PendingWindow) == 0
    assert _count(ctx, Occurrence) == 0
    assert _count(ctx, Group) == 0


def test_a_committed_ingest_clears_the_write_health(ctx: AppContext) -> None:
    health = ctx.db.write_health
    health.failed("full")
    assert _outcomes(ctx, occurrence(fingerprint=["healthy"])) == ["created"]
    assert health.failing() is None


def test_an_ingest_that_stores_nothing_leaves_the_write_health(ctx: AppContext) -> None:
    item = occurrence(fingerprint=["stored-once"])
    assert _outcomes(ctx, item) == ["created"]
    health = ctx.db.write_health
    health.failed("full")
    assert _outcomes(ctx, item) == ["duplicate"]  # nothing written proves nothing
    assert health.failing() == "full"


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[tuple[Database, list[BaseException]]]:
    """A file database whose write lock another connection holds; the hook's errors recorded."""
    path = tmp_path / "locked.db"
    db = Database(create_db_engine(f"sqlite:///{path}", busy_timeout_ms=50))
    seen: list[BaseException] = []
    event.listen(db.engine, "handle_error", lambda c: seen.append(c.original_exception))
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER)")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield db, seen
    finally:
        holder.rollback()
        holder.close()
        db.dispose()


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's BEGIN IMMEDIATE")
def test_a_failed_begin_is_sqlalchemy_s_error_through_the_hook(
    locked_sqlite: tuple[Database, list[BaseException]],
) -> None:
    db, seen = locked_sqlite
    with pytest.raises(OperationalError) as failed, db.write_connection():
        pass
    assert "database is locked" in str(failed.value)
    assert database_unavailable(failed.value)
    assert [type(e) for e in seen] == [sqlite3.OperationalError]
    with pytest.raises(OperationalError), db.write() as session:
        session.connection()
    assert len(seen) == 2


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's BEGIN IMMEDIATE")
def test_the_write_connection_takes_the_write_lock_up_front(tmp_path: Path) -> None:
    """A second writer waits at BEGIN, not half-way through its statements."""
    path = tmp_path / "lock.db"
    db = Database(create_db_engine(f"sqlite:///{path}", busy_timeout_ms=50))
    try:
        with db.write_connection() as conn:
            other = sqlite3.connect(path, isolation_level=None, timeout=0.05)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
            assert conn.connection.driver_connection.in_transaction  # type: ignore[union-attr]
    finally:
        db.dispose()
