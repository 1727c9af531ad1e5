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
    assert {"auto_resolve", "ongoing", "forecast_refresh", "webhook_delivery"} <= set(summary)
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
