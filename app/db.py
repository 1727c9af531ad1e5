"""Engine, sessions and the column types shared by every table."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime, Dialect, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

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


def is_sqlite(url: str | URL) -> bool:
    """Whether the URL names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "database is busy",
    "unable to open database",
    "disk i/o error",
)
# PostgreSQL SQLSTATE classes meaning "not now": connection exception, insufficient
# resources, operator intervention (shutdown, admin termination).
POSTGRES_UNAVAILABLE_CLASSES = ("08", "53", "57")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used now (as opposed to a bad statement)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in POSTGRES_UNAVAILABLE_CLASSES
    message = str(exc.orig).lower()
    if any(marker in message for marker in SQLITE_UNAVAILABLE):
        return True
    # A driver error without an SQLSTATE is a client-side failure to reach the server.
    return type(exc.orig).__module__.startswith("psycopg")


def create_db_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    busy_timeout_ms: int = 30_000,
    connect_timeout: int = 10,
) -> Engine:
    """Create the engine with the per-backend settings the service relies on."""
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
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            **pool_args,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so we can emit BEGIN IMMEDIATE.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints (the fsyncs of WAL mode) run in a background thread (Database
            # .start_checkpointer); this larger automatic threshold is only the safety net.
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Write use cases take the write lock up front: a deferred transaction that later
            # upgrades to a writer can fail with SQLITE_BUSY instead of waiting.
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(
        url,
        json_serializer=json_text,
        # Error messages then never carry bound values (webhook secrets, key hashes, payloads).
        hide_parameters=True,
        connect_args={"connect_timeout": connect_timeout},
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
    )


class Database:
    """Holds the engine and two session factories: one for reads, one for write use cases."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        write_engine = engine.execution_options(sqlite_begin="IMMEDIATE") if self.sqlite else engine
        self.read_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(bind=write_engine, expire_on_commit=False)
        self._checkpointer: tuple[threading.Thread, threading.Event] | None = None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; closed at the end (loaded rows stay readable)."""
        session = self.read_sessions()
        try:
            yield session
        finally:
            session.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session for one write use case; the use case commits, errors roll back."""
        session = self.write_sessions()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def start_checkpointer(self, interval_seconds: float) -> None:
        """Checkpoint the SQLite WAL every ``interval_seconds`` off the request path.

        A commit that crosses the automatic checkpoint threshold would otherwise pay the
        checkpoint's fsyncs itself; a PASSIVE checkpoint never blocks readers or writers.
        """
        if not self.sqlite or self._checkpointer is not None or interval_seconds <= 0:
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval_seconds):
                try:
                    with self.engine.connect() as conn:
                        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                except Exception:  # noqa: BLE001  (a busy or missing file is retried next time)
                    log.debug("WAL checkpoint skipped", exc_info=True)

        thread = threading.Thread(target=run, name="sqlite-checkpointer", daemon=True)
        thread.start()
        self._checkpointer = (thread, stop)

    def dispose(self) -> None:
        """Stop the checkpointer and close pooled connections."""
        if self._checkpointer is not None:
            thread, stop = self._checkpointer
            stop.set()
            thread.join(timeout=5)
            self._checkpointer = None
        self.engine.dispose()


JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSON column: JSONB on PostgreSQL, JSON text elsewhere."""
