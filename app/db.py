"""Engine, sessions and the column types shared by every table."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import JSON, DateTime, Dialect, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session, sessionmaker
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

# Errors saying the database cannot store anything, whatever the request: the disk (or the
# database's own size limit) is full, the database is read-only, or its storage fails. By kind.
CANNOT_WRITE_SQLITE = {
    "SQLITE_FULL": "full",
    "SQLITE_READONLY": "read_only",
    "SQLITE_IOERR": "io_error",
}
# The same by message, for errors that carry no SQLite error name.
CANNOT_WRITE_SQLITE_MESSAGES = {
    "database or disk is full": "full",
    "attempt to write a readonly database": "read_only",
    "disk i/o error": "io_error",
}
# disk_full, read_only_sql_transaction (a read-only database or a standby), io_error.
CANNOT_WRITE_POSTGRES = {"53100": "full", "25006": "read_only", "58030": "io_error"}


def cannot_write(exc: BaseException) -> str | None:
    """The kind of failure (``full``, ``read_only``, ``io_error``) when ``exc`` says the database
    cannot write at all, as opposed to one statement's fault; else None."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return CANNOT_WRITE_POSTGRES.get(sqlstate)
    if not isinstance(orig, sqlite3.Error):
        return None
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        # Extended codes (SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED, ...) share the prefix.
        for prefix, kind in CANNOT_WRITE_SQLITE.items():
            if name == prefix or name.startswith(prefix + "_"):
                return kind
        return None
    message = str(orig).lower()
    for marker, kind in CANNOT_WRITE_SQLITE_MESSAGES.items():
        if marker in message:
            return kind
    return None


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used now (as opposed to a bad statement).

    A database that cannot write (:func:`cannot_write`) counts as unavailable.
    """
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if cannot_write(exc) is not None:
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


class WriteHealth:
    """Whether this process's writes are failing because the database cannot write.

    Set by any write that failed with a :func:`cannot_write` error (the engine's error hook,
    and the ingest writer, whose statements bypass the engine), cleared by the next write that
    commits — or, when no write has failed for ``HOLD_SECONDS``, by itself: a process taken out
    of the load balancer gets no writes that could clear it, so after a while it reports ready
    again and the next write decides. ``/readyz`` reads it; the check costs nothing.
    """

    HOLD_SECONDS = 30.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failed_at: float | None = None
        self._kind = ""

    def failed(self, kind: str) -> None:
        """A write failed: the database cannot write (``kind`` says why)."""
        self._kind = kind
        self._failed_at = self._clock()

    def succeeded(self) -> None:
        """A write committed."""
        self._failed_at = None

    def note(self, exc: BaseException) -> str | None:
        """Record ``exc`` if it says the database cannot write; its kind, else None."""
        kind = cannot_write(exc)
        if kind is not None:
            self.failed(kind)
        return kind

    def failing(self) -> str | None:
        """The kind of the last failure while writes are failing; None when they are not."""
        failed_at = self._failed_at
        if failed_at is None:
            return None
        if self._clock() - failed_at >= self.HOLD_SECONDS:
            return None
        return self._kind


def create_db_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    busy_timeout_ms: int = 30_000,
    connect_timeout: int = 10,
    wal_autocheckpoint: int = 1000,
) -> Engine:
    """Create the engine with the per-backend settings the service relies on.

    ``wal_autocheckpoint``: WAL length (pages) at which a committing SQLite connection
    checkpoints by itself; :meth:`Database.start_checkpointer` raises it far above what one
    of its cycles leaves, so that commits never pay a checkpoint.
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
        json_deserializer=orjson.loads,
        # Error messages then never carry bound values (webhook secrets, key hashes, payloads).
        hide_parameters=True,
        connect_args={"connect_timeout": connect_timeout},
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
    )


# Kept open for the life of the process, never closed: closing any descriptor of a file drops
# every POSIX lock this process holds on it, and SQLite's connections hold theirs on the database.
_SYNC_FDS: dict[tuple[int, int], int] = {}
_SYNC_FDS_LOCK = threading.Lock()


def create_private_file(path: str) -> None:
    """Create the SQLite database file ``path`` with mode 600 if it does not exist yet.

    SQLite would create it with 644 (less the umask), and it holds every tenant's data and
    the webhook secrets. Its -wal, -shm and journal files take the database file's mode, so
    they are private too. The descriptor is kept, like :func:`_sync_fd`'s (and used by it):
    closing it could drop the POSIX locks of a connection another thread opened meanwhile.
    In-memory databases and ``file:`` URIs are left to SQLite.
    """
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    with _SYNC_FDS_LOCK:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return
        except OSError:
            return  # e.g. its folder is missing: SQLite's own error says so next
        st = os.fstat(fd)
        _SYNC_FDS[(st.st_dev, st.st_ino)] = fd


def _sync_fd(path: str) -> int:
    """A read-only descriptor of the database file, for fsync only (one per file and process)."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino)
    with _SYNC_FDS_LOCK:
        fd = _SYNC_FDS.get(key)
        if fd is None:
            fd = _SYNC_FDS[key] = os.open(path, os.O_RDONLY)
        return fd


T = TypeVar("T")


class PriorityRunner:
    """A thread that runs the calls handed to it, at the priority of the thread that made it.

    The WAL checkpointer's thread lowers its own priority, so that request handling pre-empts
    its long passive passes; its short final pass, though, holds the ingest writer's gate, and
    at the lowered priority the busy event loop stretched it (10–70 ms instead of 4–23 ms
    measured at 2,300 posts/s). That pass runs here instead. Linux threads inherit the nice
    value of the thread that starts them, hence the runner is started by ``start_checkpointer``
    and not by the checkpointer's thread.
    """

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, call: Callable[[], T]) -> T:
        """Run ``call`` on the runner's thread; its result, or its exception raised here."""
        future: Future[T] = Future()
        self._calls.put((call, future))
        return future.result()

    def close(self) -> None:
        """Stop the thread once the calls handed over so far are done."""
        self._calls.put(None)
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            call, future = item
            try:
                future.set_result(call())
            except BaseException as exc:  # noqa: BLE001  (handed to the caller)
                future.set_exception(exc)


class WalCheckpointer:
    """Moves the WAL into the database file without making writers wait for the disk.

    Every checkpoint that copies the whole WAL ends with an fsync of the database file, and only
    such a complete checkpoint lets the next writer start the WAL over (else the file grows
    without bound). Under steady writes a passive checkpoint is never complete (frames arrive
    while it copies), and a FULL one holds the write lock through its fsyncs: tens of
    milliseconds on an ordinary disk, which every request waiting to commit would pay.

    So each cycle runs one passive pass, which blocks nobody, and the pages it copied are then
    synced from here, outside every SQLite lock. Only now and then (COMPLETE_FRAMES,
    COMPLETE_SECONDS) does a cycle complete the checkpoint: more passive passes, each with less
    left to copy than the one before, then a FULL pass that copies and syncs only what arrived
    in the last few milliseconds. That final pass is all the writers wait for; it runs at the
    process's own priority (``final_runner``), the passive passes at a lower one.
    """

    # Before a completing pass, each passive pass copies what arrived during the one before,
    # so three leave only a few milliseconds' worth to the pass that blocks writers.
    PASSES = 3
    # A complete checkpoint (the WAL starts over) once the WAL holds this many pages (about
    # 130 MB at 4 KiB pages) or this long after the last one: its final pass makes writers wait
    # for two fsyncs, so it is rare; the passive passes keep the copying current in between.
    COMPLETE_FRAMES = 32_768
    COMPLETE_SECONDS = 10.0
    # The WAL length (pages, about 400 MB) at which a commit of a process running the
    # checkpointer checkpoints by itself: only if the checkpointer cannot keep up or has died.
    SAFETY_NET_PAGES = 100_000
    # How long the final pass waits for other processes' writers and older readers; it holds
    # the write lock meanwhile, so it gives up early and the next cycle tries again.
    BUSY_TIMEOUT_MS = 100

    def __init__(
        self, path: str, gate: threading.Lock, final_runner: PriorityRunner | None = None
    ) -> None:
        self.path = path
        self.gate = gate
        # Where the final, gated pass runs (see PriorityRunner); None: on the calling thread.
        self.final_runner = final_runner
        self._conn: sqlite3.Connection | None = None
        self._completed_at = time.monotonic()

    def lower_priority(self) -> None:
        """Let request threads pre-empt this one (Linux: niceness is per thread)."""
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self.BUSY_TIMEOUT_MS}")
            # NORMAL: the checkpoint fsyncs the WAL before copying and the database at the end.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _pass(self, mode: str) -> tuple[int, int, int]:
        """One checkpoint pass: (busy, pages in the WAL, pages now in the database)."""
        row = self._connection().execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def _sync(self) -> None:
        """Make durable the pages a passive pass copied (and the WAL up to now)."""
        os.fsync(_sync_fd(self.path))
        wal = os.open(self.path + "-wal", os.O_RDONLY)
        try:
            os.fsync(wal)
        finally:
            os.close(wal)

    def cycle(self) -> None:
        """Copy the WAL into the database; now and then complete it so the WAL starts over."""
        now = time.monotonic()
        due = now - self._completed_at >= self.COMPLETE_SECONDS
        copied_before = -1
        for _ in range(self.PASSES):
            # ``frames`` is the WAL's length when the pass began: what arrived during the pass
            # shows only in the next pass's answer.
            busy, frames, copied = self._pass("PASSIVE")
            if busy:
                return  # another process's checkpointer is copying: its cycle does the work
            if frames <= 0 or frames == copied_before:
                # Not in WAL mode, empty, or nothing new: all of the WAL is in the database.
                self._completed_at = now
                return
            copied_before = copied
            self._sync()
            if not (due or frames >= self.COMPLETE_FRAMES):
                return  # one pass a cycle keeps the copying (and the fsyncs) small
        # The gate keeps this process's ingest writer out (it serves HTTP while it waits rather
        # than sleeping in SQLite's busy handler); other processes wait on the write lock.
        if self.final_runner is not None:
            busy, frames, copied = self.final_runner.run(self._final_pass)
        else:
            busy, frames, copied = self._final_pass()
        if not busy and frames == copied:
            self._completed_at = now

    def _final_pass(self) -> tuple[int, int, int]:
        with self.gate:
            return self._pass("FULL")

    def close(self) -> None:
        """Close the connection (the next cycle opens a new one)."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


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
        self.read_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(bind=write_engine, expire_on_commit=False)
        self.write_health = WriteHealth()
        event.listen(engine, "handle_error", self._on_error)
        event.listen(self.write_sessions, "after_flush", _mark_written)
        event.listen(self.write_sessions, "do_orm_execute", _mark_dml)
        event.listen(self.write_sessions, "after_commit", self._on_commit)
        event.listen(self.write_sessions, "after_rollback", _unmark_written)
        self._checkpointer: (
            tuple[threading.Thread, threading.Event, PriorityRunner, Callable[..., None]] | None
        ) = None
        # Held by the ingest writer around its transactions and by the WAL checkpointer around
        # its final, blocking pass (see WalCheckpointer).
        self.checkpoint_gate = threading.Lock()
        # Transactions of this process's ingest writer so far: the retention pass reads it to
        # tell whether ingest is running, and then leaves it more of the database and the CPU.
        self.ingest_transactions = 0

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

        See :class:`WalCheckpointer`: a commit that crossed the automatic checkpoint threshold
        would otherwise pay the checkpoint's copying and fsyncs itself.
        """
        if not self.sqlite or self._checkpointer is not None or interval_seconds <= 0:
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            return

        # From now on commits never checkpoint by themselves (the checkpointer does): every
        # connection, pooled before or opened after, gets the safety net at its next checkout.
        def safety_net(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            if not record.info.get("wal_safety_net"):
                dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={WalCheckpointer.SAFETY_NET_PAGES}")
                record.info["wal_safety_net"] = True

        event.listen(self.engine, "checkout", safety_net)

        # Started from this thread, so it keeps this thread's priority (see PriorityRunner).
        final_runner = PriorityRunner("sqlite-checkpoint-final")
        checkpointer = WalCheckpointer(database, self.checkpoint_gate, final_runner)
        stop = threading.Event()

        def run() -> None:
            checkpointer.lower_priority()
            while not stop.wait(interval_seconds):
                try:
                    checkpointer.cycle()
                except Exception:  # noqa: BLE001  (a busy or missing file is retried next time)
                    log.debug("WAL checkpoint skipped", exc_info=True)
                    checkpointer.close()
            checkpointer.close()

        thread = threading.Thread(target=run, name="sqlite-checkpointer", daemon=True)
        thread.start()
        self._checkpointer = (thread, stop, final_runner, safety_net)

    def dispose(self) -> None:
        """Stop the checkpointer and close pooled connections."""
        if self._checkpointer is not None:
            thread, stop, final_runner, safety_net = self._checkpointer
            stop.set()
            thread.join(timeout=5)
            final_runner.close()
            event.remove(self.engine, "checkout", safety_net)
            self._checkpointer = None
        self.engine.dispose()


JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSON column: JSONB on PostgreSQL, JSON text elsewhere."""
