"""Database errors by meaning: "not now" (unavailable) or "cannot write at all".

The ingest writer, the error handlers, the start-up and ``/readyz`` ask these questions of an
exception; the answers come from PostgreSQL's SQLSTATE codes and SQLite's error names, or its
messages when an error carries no name.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, OperationalError

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
