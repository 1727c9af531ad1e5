"""Engine, sessions and the column types shared by every table.

The SQLite WAL checkpointer lives in ``app.sqlite_maintenance``, the meaning of database errors
(unavailable, cannot write) in ``app.db_errors``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from app.db_errors import WriteHealth
from app.sqlite_maintenance import BackgroundCheckpointer, create_private_file

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints stably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    SQLite has no zone support, so values are stored as naive UTC and given ``UTC`` back on load;
    comparisons stay correct because every stored value uses the same zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def json_text(value: Any) -> str:
    """JSON text as the JSON columns store it (orjson), for the engine and direct inserts."""
    return orjson.dumps(value).decode()


# The SQLite BEGIN statement of each transaction mode (execution option ``sqlite_begin``).
BEGIN = {mode: f"BEGIN {mode}" for mode in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")}


def is_sqlite(url: str | URL) -> bool:
    """Whether the URL names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_db_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    busy_timeout_ms: int = 30_000,
    connect_timeout: int = 10,
    wal_autocheckpoint: int = 1000,
    cache_mb: int = 8,
) -> Engine:
    """Create the engine with the per-backend settings the service relies on.

    ``wal_autocheckpoint``: WAL length (pages) at which a committing SQLite connection
    checkpoints by itself; :meth:`Database.start_checkpointer` raises it far above what one
    of its cycles leaves, so that commits never pay a checkpoint. ``cache_mb``: each SQLite
    connection's page cache (SQLite's default, 2 MiB, is less than a group commit of a few
    hundred occurrences dirties: the rest was spilled to the WAL and read back mid-transaction).
    """
    if is_sqlite(url):
        database = make_url(url).database
        in_memory = not database or database == ":memory:"
        # Keep file connections open: closing the last WAL connection checkpoints the file.
        pool_args: dict[str, Any] = (
            {"poolclass": StaticPool}
            if in_memory
            else {"pool_size": pool_size, "max_overflow": max_overflow}
        )
        engine = create_engine(
            url,
            json_serializer=json_text,
            # Stored JSON is orjson's own output; reading it back with orjson is about three
            # times faster than the standard library (the issue stream reads three columns
            # of every latest occurrence).
            json_deserializer=orjson.loads,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            **pool_args,
        )

        @event.listens_for(engine, "do_connect")
        def _create_privately(
            _dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
        ) -> None:
            path = cparams.get("database", cargs[0] if cargs else None)
            if isinstance(path, str):
                create_private_file(path)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so we can emit BEGIN IMMEDIATE.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # Only a new, empty file takes it (before WAL mode writes the header): freed pages
            # can then go back to the filesystem (docs/adr/0010-retention.md); elsewhere a no-op.
            cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute(f"PRAGMA cache_size={-1024 * int(cache_mb)}")  # negative: KiB
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Write use cases take the write lock up front: a deferred transaction that later
            # upgrades to a writer can fail with SQLITE_BUSY instead of waiting.
            statement = BEGIN[conn.get_execution_options().get("sqlite_begin", "DEFERRED")]
            # Straight to the driver: through exec_driver_sql, the statement machinery cost
            # about 25 µs per transaction (issue 14). A failure still goes through
            # SQLAlchemy's error handling (its type, the handle_error hook that records a
            # database that cannot write).
            try:
                conn.connection.driver_connection.execute(statement)
            except sqlite3.Error as exc:
                conn._handle_dbapi_exception(exc, statement, (), None, None)

        return engine
    return create_engine(
        url,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        # Error messages then never carry bound values (webhook secrets, key hashes, payloads).
        hide_parameters=True,
        connect_args={"connect_timeout": connect_timeout},
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
    )


# Session.info key: the session's transaction changed rows (see Database._on_commit).
WROTE = "wrote"


def _mark_written(session: Session, _flush_context: Any) -> None:
    session.info[WROTE] = True


def _mark_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


def _unmark_written(session: Session) -> None:
    session.info.pop(WROTE, None)


class Database:
    """Holds the engine and two session factories: one for reads, one for write use cases."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        write_engine = engine.execution_options(sqlite_begin="IMMEDIATE") if self.sqlite else engine
        self.write_engine = write_engine
        self.read_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(bind=write_engine, expire_on_commit=False)
        self.write_health = WriteHealth()
        event.listen(engine, "handle_error", self._on_error)
        event.listen(self.write_sessions, "after_flush", _mark_written)
        event.listen(self.write_sessions, "do_orm_execute", _mark_dml)
        event.listen(self.write_sessions, "after_commit", self._on_commit)
        event.listen(self.write_sessions, "after_rollback", _unmark_written)
        self._checkpointer: BackgroundCheckpointer | None = None
        # Held by the ingest writer around its transactions and by the WAL checkpointer around
        # its final, blocking pass (see WalCheckpointer).
        # Re-entrant: the retention pass holds it and opens sessions, whose counter fold takes it.
        self.checkpoint_gate = threading.RLock()
        # Transactions of this process's ingest writer so far: the retention pass reads it to
        # tell whether ingest is running, and then leaves it more of the database and the CPU.
        self.ingest_transactions = 0
        # Run before a thread's outermost session (read or write) is handed out: the counter
        # journal's fold (``app.occurrences.ingest.journal.fold_pending``), so use cases see
        # exact counts. Not before a session opened inside another: the fold would wait for the
        # locks of the thread's own open transaction.
        self.before_session: Callable[[], None] | None = None
        self._sessions = threading.local()

    def note_ingest_transaction(self) -> None:
        """The ingest writer ran a transaction (see ``ingest_transactions``)."""
        self.ingest_transactions += 1

    def _on_error(self, context: ExceptionContext) -> None:
        self.write_health.note(context.original_exception)

    def _on_commit(self, session: Session) -> None:
        # Only a commit that wrote something proves the database can write.
        if session.info.pop(WROTE, False):
            self.write_health.succeeded()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; closed at the end (loaded rows stay readable)."""
        depth = self._enter()
        try:
            session = self.read_sessions()
            try:
                yield session
            finally:
                session.close()
        finally:
            self._sessions.depth = depth

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session for one write use case; the use case commits, errors roll back."""
        depth = self._enter()
        try:
            session = self.write_sessions()
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
        finally:
            self._sessions.depth = depth

    def _enter(self) -> int:
        """Run ``before_session`` for a thread's outermost session; the depth before it."""
        depth: int = getattr(self._sessions, "depth", 0)
        if depth == 0 and self.before_session is not None:
            self.before_session()
        self._sessions.depth = depth + 1
        return depth

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A connection in a write transaction, for a use case that sends its own statements.

        The ingest transaction (issue 14): an ORM session around it cost about 50 µs per
        transaction more than this connection, so ingest opens one on the connection only when
        an occurrence needs the ORM (:class:`app.occurrences.ingest.batch.Txn`). The use case
        commits; leaving without a commit rolls back.
        """
        with self.write_engine.connect() as conn:
            conn.begin()
            yield conn

    def start_checkpointer(self, interval_seconds: float) -> None:
        """Checkpoint the SQLite WAL every ``interval_seconds`` off the request path.

        See :class:`app.sqlite_maintenance.WalCheckpointer`: a commit that crossed the automatic
        checkpoint threshold would otherwise pay the checkpoint's copying and fsyncs itself.
        """
        if not self.sqlite or self._checkpointer is not None or interval_seconds <= 0:
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        self._checkpointer = BackgroundCheckpointer(
            self.engine, database, self.checkpoint_gate, interval_seconds
        )

    def dispose(self) -> None:
        """Stop the checkpointer and close pooled connections."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.engine.dispose()


JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSON column: JSONB on PostgreSQL, JSON text elsewhere."""
