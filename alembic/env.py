"""Alembic environment: runs migrations against the configured database."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool

from app import models  # noqa: F401  (registers the tables on Base.metadata)
from app.config import get_settings
from app.db import Base

config = context.config
if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or get_settings().resolved_database_url


def _incremental_auto_vacuum(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA auto_vacuum=INCREMENTAL")


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on a live connection (batch mode so SQLite can alter tables)."""
    connectable = config.attributes.get("connection")
    if connectable is None:
        url = _url()
        # SQLite: wait for a lock as long as the service's connections do (the driver's default
        # is 5 s, short for processes that start and migrate together on a loaded machine).
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        if url.startswith("sqlite"):
            # A database this run creates gets incremental auto-vacuum, as the service's own
            # connections ask for (app.db); a no-op once tables exist.
            event.listen(engine, "connect", _incremental_auto_vacuum)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
