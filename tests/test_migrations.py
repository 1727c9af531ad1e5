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


def test_existing_projects_get_the_default_retention(template_db: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    url = _url(tmp_path)
    upgrade(url, "head")
    downgrade(url, "0002")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO organizations (id, slug, name, early_adopter, created_at) "
                    "VALUES (987654, 'mig-org', 'Mig', false, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO projects (id, organization_id, slug, name, resolve_age_hours, "
                    "next_short_id, created_at) "
                    "VALUES (987654, 987654, 'mig', 'Mig', 0, 1, CURRENT_TIMESTAMP)"
                )
            )
        upgrade(url, "head")
        with engine.begin() as conn:
            days = conn.execute(text("SELECT retention_days FROM projects WHERE id = 987654"))
            assert days.scalar_one() == 90
            indexes = {i["name"] for i in inspect(conn).get_indexes("occurrences")}
            assert "ix_occurrences_project_event" in indexes
            conn.execute(text("DELETE FROM projects WHERE id = 987654"))
            conn.execute(text("DELETE FROM organizations WHERE id = 987654"))
    finally:
        engine.dispose()
