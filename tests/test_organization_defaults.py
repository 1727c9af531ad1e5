"""The default organization and project, seeded by every process that starts on a database."""

from __future__ import annotations

import threading
import time

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from app.db import Database, create_db_engine
from app.models import Organization, Project
from app.organizations.defaults import ensure_defaults
from tests.conftest import ON_POSTGRES


def _wait_until_blocked(db_url: str, timeout: float = 5.0) -> None:
    """Wait until some PostgreSQL session waits for a lock (SQLite: a short pause)."""
    if not ON_POSTGRES:
        time.sleep(0.3)
        return
    engine = create_engine(db_url, poolclass=NullPool)
    deadline = time.monotonic() + timeout
    try:
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                waiting = conn.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
                if waiting:
                    return
                time.sleep(0.02)
    finally:
        engine.dispose()


def test_process_seeding_while_another_commits_the_same_defaults_does_not_fail(
    db_url: str,
) -> None:
    # Another process has inserted the defaults but not committed yet: this one sees an empty
    # database, inserts too, waits on the key and must then accept that it lost the race.
    other = Database(create_db_engine(db_url))
    mine = Database(create_db_engine(db_url))
    errors: list[BaseException] = []
    try:
        with other.write() as session:
            session.add(Organization(id=1, slug="default", name="Default"))
            session.flush()
            session.add(Project(id=1, organization_id=1, slug="default", name="Default"))
            session.flush()

            def seed() -> None:
                try:
                    ensure_defaults(mine)
                except BaseException as exc:  # noqa: BLE001 - asserted below
                    errors.append(exc)

            thread = threading.Thread(target=seed)
            thread.start()
            _wait_until_blocked(db_url)
            session.commit()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert errors == []
        with mine.read() as session:
            assert session.scalar(select(func.count()).select_from(Organization)) == 1
            assert session.scalar(select(func.count()).select_from(Project)) == 1
    finally:
        other.dispose()
        mine.dispose()
