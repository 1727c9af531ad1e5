"""The command line: migrate, openapi, jobs, auto-resolve and the generated admin token."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import _ensure_admin_token, cli
from app.config import get_settings
from tests.conftest import TEST_DATABASE_URL

runner = CliRunner()


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data = tmp_path / "cli-data"
    monkeypatch.setenv("ISSUE_PLATFORM_DATA_DIR", str(data))
    monkeypatch.setenv("ISSUE_PLATFORM_DATABASE_URL", db_url)
    monkeypatch.delenv("ISSUE_PLATFORM_ADMIN_TOKEN", raising=False)
    get_settings.cache_clear()
    yield data
    get_settings.cache_clear()


def test_admin_token_is_generated_once_with_owner_only_permissions(env: Path) -> None:
    _ensure_admin_token()
    path = env / "admin-token"
    token = path.read_text().strip()
    assert len(token) > 30
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _ensure_admin_token()
    assert path.read_text().strip() == token


def test_migrate_creates_default_organization_and_project(env: Path) -> None:
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    from app.db import Database, create_db_engine
    from app.models import Organization, Project

    db = Database(create_db_engine(get_settings().resolved_database_url))
    with db.read() as session:
        org = session.get(Organization, 1)
        project = session.get(Project, 1)
    db.dispose()
    assert org is not None and org.slug == "default"
    assert project is not None and project.slug == "default"


def test_openapi_prints_the_committed_schema(env: Path) -> None:
    result = runner.invoke(cli, ["openapi"])
    assert result.exit_code == 0
    committed = json.loads((Path(__file__).resolve().parent.parent / "openapi.json").read_text())
    assert json.loads(result.output) == committed


def test_jobs_and_auto_resolve_run_once(env: Path) -> None:
    result = runner.invoke(cli, ["jobs"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert {"auto_resolve", "ongoing", "forecast_refresh", "webhook_delivery", "retention"} <= set(
        summary
    )
    result = runner.invoke(cli, ["auto-resolve"])
    assert result.exit_code == 0, result.output


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="the subprocess check runs once, on SQLite")
def test_python_dash_m_app_is_the_same_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "app", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for command in ("serve", "migrate", "openapi", "jobs", "auto-resolve", "consume"):
        assert command in out.stdout


def test_cleanup_prints_rows_per_table_and_dry_run_deletes_nothing(env: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from app.db import Database, create_db_engine
    from app.models import Group, GroupHash, Project

    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    db = Database(create_db_engine(get_settings().resolved_database_url))
    old = datetime.now(UTC) - timedelta(days=100)
    with db.write() as session:
        project = session.get(Project, 1)
        assert project is not None and project.retention_days == 90
        group = Group(
            project_id=1,
            type_id=1,
            hash="a" * 32,
            short_id=1,
            title="old",
            first_seen=old,
            last_seen=old,
            latest_detection_time=old,
        )
        session.add(group)
        session.flush()
        session.add(GroupHash(project_id=1, hash="a" * 32, group_id=group.id))
        session.commit()
    db.dispose()

    result = runner.invoke(cli, ["cleanup", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split() for line in result.output.splitlines()[:-1])
    assert lines["groups"] == "1"
    assert lines["group_hashes"] == "1"
    assert lines["occurrences"] == "0"
    assert result.output.splitlines()[-1].startswith("would delete 2 rows")

    result = runner.invoke(cli, ["cleanup"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 rows" in result.output
    result = runner.invoke(cli, ["cleanup", "--dry-run"])
    assert "would delete 0 rows" in result.output
