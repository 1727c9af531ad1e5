"""Migrations: the stairway (upgrade, downgrade, upgrade) and models that match them."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from app.db import Base
from app.migrations import alembic_config, downgrade, head_revision, upgrade
from tests.conftest import TEST_DATABASE_URL


def _url(tmp_path: Path) -> str:
    return TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'stairway.db'}"


def test_every_revision_upgrades_downgrades_and_upgrades_again(
    template_db: str, tmp_path: Path
) -> None:
    url = _url(tmp_path)
    script = ScriptDirectory.from_config(alembic_config(url))
    revisions = list(reversed(list(script.walk_revisions())))
    upgrade(url, "head")
    downgrade(url, "base")
    for revision in revisions:
        upgrade(url, revision.revision)
        downgrade(url, revision.down_revision or "base")
        upgrade(url, revision.revision)
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_models_match_the_migrations(template_db: str, tmp_path: Path) -> None:
    url = _url(tmp_path)
    upgrade(url, "head")
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], diff


def test_migration_files_are_date_named() -> None:
    versions = Path(__file__).resolve().parent.parent / "alembic" / "versions"
    names = [p.name for p in versions.glob("*.py")]
    assert names
    for name in names:
        assert name[:8].isdigit() and name[8] == "_", name
