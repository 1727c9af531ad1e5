"""Start-up of one process: bring the database to a usable state, retrying until it answers.

A process (``serve`` worker or ``consume``) starts without waiting for the database. Until its
start-up is done — schema at the head revision, default organization and project present, the
registry of API-registered issue types loaded — ``/healthz`` answers 200, ``/readyz`` 503, and
every request that needs the database 503 ``service_unavailable`` with ``Retry-After``
(:class:`StartupGate`). The work is retried with back-off, one log line per failed attempt;
tracebacks only at the DEBUG log level.

Several processes may start together (``serve --workers N``, or a consumer beside the server):
only one migrates at a time (:func:`migration_lock`), the others then find the schema at head.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator

import orjson
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app.context import AppContext
from app.db import Database
from app.db_errors import database_unavailable
from app.errors import ServiceUnavailable
from app.issue_types.service import reload_registry
from app.middleware import ASGIApp, Receive, Scope, Send
from app.migrations import head_revision, upgrade
from app.organizations.defaults import ensure_defaults
from app.system.service import current_revision

log = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock held while migrating (any constant unique to this app).
MIGRATION_LOCK_KEY = 0x1557_E5_0017
# Answered before the start-up is done; the docs and the error pages must stay reachable.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"})
OPEN_PREFIXES = ("/docs-static/",)
NOT_READY_MESSAGE = "starting: the database is not ready yet (unreachable or migrating); retry"


class SchemaBehind(Exception):
    """The database's schema is not at the head revision (and this attempt does not migrate)."""


def short_reason(exc: BaseException) -> str:
    """One line saying why an attempt failed: the error class and the driver's first line."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) > 200:
        first = first[:197] + "..."
    name = type(cause).__name__
    return f"{name}: {first}" if first else name


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the lock that lets one process at a time migrate this database.

    PostgreSQL: a session advisory lock (released by the server if the process dies). SQLite
    file: an exclusive ``flock`` on ``<database>.migrate-lock`` beside the file (a separate file:
    any descriptor of the database file itself, once closed, would drop SQLite's own locks).
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock between processes
        yield
        return
    # Mode 600, like the database beside it (an empty file, but in the private data directory).
    fd = os.open(f"{database}.migrate-lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate_database(db: Database, url: str, *, migrate: bool = True) -> None:
    """Bring the schema to head (one process at a time) and seed the default organization.

    ``migrate=False``: raise :class:`SchemaBehind` instead of migrating.
    """
    # The whole sequence holds the lock, not only the upgrade: on a new SQLite file, a process
    # reading the version or seeding the defaults while another one creates the tables (and
    # switches the file to WAL) could be refused with "database is locked" at once.
    with migration_lock(db.engine):
        current = current_revision(db.engine)
        head = head_revision()
        if current != head:
            if not migrate:
                raise SchemaBehind(f"schema at {current or 'nothing'}, code expects {head}")
            log.info("migrating the database from %s to %s", current or "nothing", head)
            upgrade(url)
        ensure_defaults(db)


class Startup:
    """Brings the database of one context to a usable state, retrying with back-off."""

    def __init__(
        self, ctx: AppContext, *, first_delay: float = 0.5, max_delay: float = 5.0
    ) -> None:
        self.ctx = ctx
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.attempts = 0

    def prepare(self, *, migrate: bool = True) -> None:
        """Migrate to head (one process at a time), seed the defaults, load the registry."""
        migrate_database(self.ctx.db, self.ctx.settings.resolved_database_url, migrate=migrate)
        with self.ctx.db.read() as session:
            reload_registry(session, self.ctx.registry)

    def _attempt(self, *, migrate: bool = True) -> bool | None:
        """One try: True when done, None when only the migrations are missing, else False.

        A failure is one log line; its traceback only at the DEBUG level.
        """
        self.attempts += 1
        try:
            self.prepare(migrate=migrate)
        except SchemaBehind as exc:
            log.info("database schema behind (%s): migrating in the background", exc)
            return None
        except Exception as exc:
            debug = log.isEnabledFor(logging.DEBUG)
            if database_unavailable(exc) or isinstance(exc, OSError):
                log.warning(
                    "database not ready (attempt %d): %s",
                    self.attempts,
                    short_reason(exc),
                    exc_info=debug,
                )
            else:
                log.error(
                    "database start-up failed (attempt %d): %s",
                    self.attempts,
                    short_reason(exc),
                    exc_info=debug,
                )
            return False
        self.ready.set()
        log.info("database ready (schema at %s)", head_revision())
        return True

    def wait(self, stop: threading.Event | None = None, *, pause_first: bool = False) -> bool:
        """Try until the start-up is done (True) or ``stop`` is set (False).

        ``pause_first``: wait the first back-off delay before the first try.
        """
        stop = stop or self._stop
        delay = self.first_delay
        if pause_first:
            if stop.wait(delay):
                return False
            delay = min(delay * 2, self.max_delay)
        while not stop.is_set():
            if self._attempt():
                return True
            if stop.wait(delay):
                break
            delay = min(delay * 2, self.max_delay)
        return False

    def begin(self, on_ready: Callable[[], object]) -> None:
        """Start: at once when the schema is at head, else in a thread retrying with back-off.

        The first attempt runs here and does not migrate, so a process whose database is up to
        date is ready before it serves; migrations, and every retry, run in the thread (the
        process meanwhile answers ``/healthz``).
        """
        first = self._attempt(migrate=False)
        if first:
            on_ready()
            return

        def run() -> None:
            # Migrations pending: at once; the database did not answer: after a pause.
            if self.wait(pause_first=first is False):
                on_ready()

        self._thread = threading.Thread(target=run, name="startup", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop retrying (an attempt under way finishes, bounded by the connect timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ctx.settings.db_connect_timeout_seconds + 5)
            self._thread = None


def started(ctx: AppContext) -> bool:
    """Whether the start-up of this context is done (a context without one counts as done)."""
    startup = ctx.startup
    return startup is None or startup.ready.is_set()


class StartupGate:
    """Answers 503 ``service_unavailable`` to every request needing the database until ready.

    Health, readiness, metrics and the docs stay open. Once the start-up is done this costs
    one flag test per request.
    """

    def __init__(self, app: ASGIApp, *, startup: Startup) -> None:
        self.app = app
        self.startup = startup
        error = ServiceUnavailable(NOT_READY_MESSAGE)
        self._body = orjson.dumps(error.body())
        self._headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in (error.headers() or {}).items()),
        ]
        self._status = error.status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.startup.ready.is_set() or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        start = {"type": "http.response.start", "status": self._status, "headers": self._headers}
        await send(start)
        await send({"type": "http.response.body", "body": self._body})
