"""The SQLite data directory and its files are private to the service's user.

Real ``migrate`` and ``serve`` processes run under the common umask 022 (which would leave
0755 directories and 0644 files): the data directory must come out 0700 and every file in it
(database, -wal, -shm, migrate lock, admin token) 0600. Modes someone else set loosely are
left alone but warned about, one line each, naming the path and the ``chmod`` that fixes it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import occurrence
from tests.conftest import ON_POSTGRES, auth
from tests.processes import cli, free_port, stop, wait_ready

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="the SQLite data directory")

UMASK = 0o022
START_DEADLINE = 60.0
DB = "issue_platform.db"


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUE_PLATFORM_")}
    env["ISSUE_PLATFORM_DATA_DIR"] = str(data_dir)
    env["ISSUE_PLATFORM_RUN_JOBS"] = "false"
    return env


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _migrate(data_dir: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*cli(), "migrate"],
        env=_environment(data_dir),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
        umask=UMASK,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


@contextlib.contextmanager
def _serving(data_dir: Path, log: Path) -> Iterator[str]:
    """A ``serve`` process on the data dir; yields its base URL once ready."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cli(), "serve", "--port", str(port)],
            env=_environment(data_dir),
            cwd=data_dir.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            umask=UMASK,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, log, within=START_DEADLINE)
        yield base
    finally:
        stop(process)


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("warning:")]


def test_migrate_and_serve_create_a_private_data_dir_and_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = _migrate(data_dir)
    assert not _warnings(result.stderr), result.stderr
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / DB) == 0o600
    assert _mode(data_dir / f"{DB}.migrate-lock") == 0o600

    log = tmp_path / "serve.log"
    with _serving(data_dir, log) as base:
        token = (data_dir / "admin-token").read_text().strip()
        response = httpx.post(f"{base}/occurrences", json=occurrence(), headers=auth(token))
        assert response.status_code == 202, response.text
        # While the server runs the WAL and its index exist; both as private as the database.
        files = sorted(p.name for p in data_dir.iterdir())
        assert {f"{DB}-wal", f"{DB}-shm", "admin-token"} <= set(files), files
        loose = {
            name: oct(_mode(data_dir / name)) for name in files if _mode(data_dir / name) != 0o600
        }
        assert not loose, loose
        assert _mode(data_dir) == 0o700
    assert not _warnings(log.read_text()), log.read_text()


def test_loose_modes_are_warned_about_once_each_and_left_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _migrate(data_dir)
    token_file = data_dir / "admin-token"
    token_file.write_text("ipa_an-existing-token\n")
    # As a careless copy or an older release would leave them.
    data_dir.chmod(0o755)
    token_file.chmod(0o644)
    (data_dir / DB).chmod(0o644)

    result = _migrate(data_dir)
    log = tmp_path / "serve.log"
    with _serving(data_dir, log):
        pass

    for output in (result.stderr, log.read_text()):
        lines = _warnings(output)
        assert len(lines) == 3, output
        directory, database, token = lines
        assert str(data_dir) in directory and f"chmod 700 {data_dir}" in directory
        assert "755" in directory
        assert f"chmod 600 {data_dir / DB}" in database
        assert f"chmod 600 {token_file}" in token
        assert "644" in token
        assert "ipa_an-existing-token" not in output
    # Warned about, not changed behind the operator's back.
    assert _mode(data_dir) == 0o755
    assert _mode(token_file) == 0o644
    assert _mode(data_dir / DB) == 0o644


def test_a_token_file_only_the_owner_reads_gives_no_warning(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _migrate(data_dir)
    token_file = data_dir / "admin-token"
    token_file.write_text("ipa_an-existing-token\n")
    token_file.chmod(0o400)
    assert not _warnings(_migrate(data_dir).stderr)
