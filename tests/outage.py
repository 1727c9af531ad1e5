"""A real database outage for tests: the database refuses work until the block ends."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


@contextmanager
def database_outage(url: str) -> Iterator[None]:
    """Make the database at ``url`` unusable for writers, for real, until the block ends.

    SQLite: a connection of this process takes the write lock (``BEGIN IMMEDIATE``), so every
    writer gets "database is locked" after its busy timeout. PostgreSQL: the database stops
    accepting connections (``ALLOW_CONNECTIONS false``) and every session on it is terminated;
    it is opened again afterwards, whatever happened inside the block.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database
        holder = sqlite3.connect(parsed.database, isolation_level=None, timeout=30)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
        finally:
            holder.close()  # rolls back, releasing the lock
        return
    name = parsed.database
    assert name and name != "postgres"
    maintenance = create_engine(
        parsed.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        with maintenance.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        try:
            with maintenance.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
            yield
        finally:
            with maintenance.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    finally:
        maintenance.dispose()


@contextmanager
def writes_blocked(url: str) -> Iterator[None]:
    """Make writers of the database at ``url`` wait (not fail) until the block ends.

    SQLite: the write lock is held, as in :func:`database_outage` (a writer whose busy timeout
    is longer than the block waits it out). PostgreSQL: a transaction holds ``occurrences``
    in ACCESS EXCLUSIVE mode, so an ingest transaction waits on its first use of the table.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with database_outage(url):
            yield
        return
    engine = create_engine(parsed, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE occurrences IN ACCESS EXCLUSIVE MODE"))
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()
