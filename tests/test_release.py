"""The release as a user gets it: the wheel, installed into a fresh venv, serves from an empty folder.

Builds the wheel from this checkout, installs it (runtime dependencies only) into a new virtual
environment, and runs the installed ``issue-platform`` outside the checkout. Runs on every test
pass (SQLite and PostgreSQL runs alike serve SQLite here: the point is the install, not the
database). Needs the package index (or pip's cache) for the runtime dependencies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
import venv
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app import __version__
from tests.processes import free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)]
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("issue_platform-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its bin/ folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    done = _run([str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)])
    assert done.returncode == 0, done.stderr[-3000:]
    return bin_dir


def test_the_wheel_carries_the_migrations_inside_the_package_and_nothing_at_the_top(
    wheel: Path,
) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"app", f"issue_platform-{__version__}.dist-info"}
    assert "app/_migrations/env.py" in names
    assert "app/_migrations/script.py.mako" in names
    scripts = sorted(n for n in names if n.startswith("app/_migrations/versions/"))
    checkout = sorted(
        f"app/_migrations/versions/{p.name}" for p in (ROOT / "alembic" / "versions").glob("*.py")
    )
    assert scripts == checkout
    assert "app/py.typed" in names
    # The web console's templates and stylesheet are package data.
    assert "app/console/templates/base.html" in names
    assert "app/console/static/console.css" in names


def test_the_wheel_depends_on_runtime_packages_only(wheel: Path) -> None:
    meta = zipfile.ZipFile(wheel).read(f"issue_platform-{__version__}.dist-info/METADATA").decode()
    unconditional = [
        line.split(":", 1)[1].strip()
        for line in meta.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    names = {
        req.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip() for req in unconditional
    }
    assert {"fastapi", "sqlalchemy", "alembic", "uvicorn", "psycopg"} <= names
    assert not names & {"pytest", "mypy", "ruff", "schemathesis", "hypothesis", "confluent-kafka"}
    assert "Provides-Extra: kafka" in meta
    assert "Provides-Extra: dev" in meta


def test_installed_cli_prints_its_version(installed: Path, tmp_path: Path) -> None:
    done = _run([str(installed / "issue-platform"), "--version"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"issue-platform {__version__}"


def test_installed_venv_has_no_developer_tools(installed: Path) -> None:
    probe = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('pytest', 'mypy', 'schemathesis', 'confluent_kafka')))"
    assert _run([str(installed / "python"), "-c", probe]).returncode == 0


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    """``issue-platform serve`` of the installed wheel, started in an empty folder."""
    work = tmp_path / "empty"
    work.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUE_PLATFORM_")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{installed}{os.pathsep}{env.get('PATH', '')}"
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(installed / "issue-platform"), "serve", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, tmp_path / "serve.log")
        yield base, work, proc
    finally:
        stop(proc)
        log.close()


def test_installed_wheel_serves_from_an_empty_folder(
    served: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    base, work, proc = served
    # Everything the service keeps lives in ./data of the folder it was started in.
    token_file = work / "data" / "admin-token"
    assert (token_file.stat().st_mode & 0o777) == 0o600
    headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    event_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    occurrence = {
        "id": uuid.uuid4().hex,
        "project_id": 1,
        "fingerprint": ["release-smoke"],
        "type": 1,
        "issue_title": "Release smoke test",
        "subtitle": "from the installed wheel",
        "evidence_display": [],
        "detection_time": now.isoformat(),
        "event_id": event_id,
        "event": {
            "event_id": event_id,
            "project_id": 1,
            "platform": "python",
            "timestamp": now.timestamp(),
        },
    }
    sent = httpx.post(f"{base}/occurrences", json=occurrence, headers=headers, timeout=10)
    assert sent.status_code == 202, sent.text
    issues = httpx.get(f"{base}/issues", params={"type": "error"}, headers=headers, timeout=10)
    assert issues.status_code == 200, issues.text
    assert [i["title"] for i in issues.json()["data"]] == ["Release smoke test"]
    assert httpx.get(f"{base}/docs", timeout=10).status_code == 200
    # The web console is served from the installed package: its login form and stylesheet.
    login = httpx.get(f"{base}/ui/login", timeout=10)
    assert login.status_code == 200 and 'name="token"' in login.text
    assert httpx.get(f"{base}/ui/static/console.css", timeout=10).status_code == 200
    # Its signing key was generated beside the admin token, as private as it.
    assert ((work / "data" / "console-secret").stat().st_mode & 0o777) == 0o600
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
