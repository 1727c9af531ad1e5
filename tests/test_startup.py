"""Start-up: without the database the processes start, answer 503 and get ready by themselves;
a bad start (setting, extra, plugin, port) is a short message, not a traceback.

The PostgreSQL scenarios run against a real server (127.0.0.1:5432, or the one in
TEST_DATABASE_URL) in a scratch database of their own, reached through a TCP proxy whose port
opens only when the test says so: "the database appears" while the process runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.issue_types.service import ENTRY_POINT_GROUP
from app.system.startup import short_reason
from tests.builders import occurrence
from tests.conftest import ADMIN_TOKEN, TEST_DATABASE_URL, assert_error, auth
from tests.processes import cli, free_port

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Deadlines of the waits below: generous, they only bound a test that would otherwise hang.
START_DEADLINE = 60.0
READY_DEADLINE = 60.0
MAX_ERROR_LINES = 5


def _environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUE_PLATFORM_")}
    env.update(
        {
            "ISSUE_PLATFORM_DATA_DIR": str(tmp_path / "data"),
            "ISSUE_PLATFORM_ADMIN_TOKEN": ADMIN_TOKEN,
            "ISSUE_PLATFORM_JOBS_INTERVAL_SECONDS": "3600",
            "ISSUE_PLATFORM_DB_CONNECT_TIMEOUT_SECONDS": "2",
        }
    )
    env.update({f"ISSUE_PLATFORM_{k.upper()}": v for k, v in settings.items()})
    return env


class LateProxy:
    """A loopback TCP port that refuses connections until :meth:`open`, then forwards them."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()

    def open(self) -> None:
        """Start listening: from now on the database is reachable through the port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop listening and cut every forwarded connection."""
        self._stop.set()
        for sock in [*self._sockets, *([self._listener] if self._listener else [])]:
            with contextlib.suppress(OSError):
                sock.close()


def _postgres_server_url() -> str:
    """A URL of the PostgreSQL server's maintenance database (to create scratch databases)."""
    if TEST_DATABASE_URL and make_url(TEST_DATABASE_URL).get_backend_name() == "postgresql":
        return make_url(TEST_DATABASE_URL).set(database="postgres").render_as_string(False)
    return DEFAULT_POSTGRES


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """An empty PostgreSQL database of this test (dropped after it)."""
    server = _postgres_server_url()
    engine = create_engine(
        server,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    name = f"startup_{uuid.uuid4().hex[:12]}"
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        engine.dispose()
        message = f"PostgreSQL not reachable at {make_url(server)!r}: {short_reason(exc)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield make_url(server).set(database=name).render_as_string(False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextlib.contextmanager
def _running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A CLI process writing to ``log``; stopped with SIGTERM (it must exit 0) at the end."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cli(), *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent
        )
    try:
        yield process
        assert process.poll() is None, f"exited early:\n{log.read_text()}"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _wait_for(condition: object, deadline: float, what: str, log: Path) -> None:
    assert callable(condition)
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within the deadline:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def _assert_no_traceback(log: Path) -> None:
    output = log.read_text()
    assert "Traceback" not in output, output
    assert "start-up failed" not in output, output


def test_serve_starts_without_postgres_and_gets_ready_when_it_appears(
    scratch_postgres: str, tmp_path: Path
) -> None:
    database = make_url(scratch_postgres)
    proxy = LateProxy((database.host or "127.0.0.1", database.port or 5432))
    url = database.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    args = ["serve", "--port", str(port), "--workers", "2"]
    try:
        with _running(args, _environment(tmp_path, database_url=url), log):
            deadline = time.monotonic() + START_DEADLINE
            _wait_for(lambda: _get(f"{base}/healthz") is not None, deadline, "/healthz", log)
            assert httpx.get(f"{base}/healthz").status_code == 200
            ready = httpx.get(f"{base}/readyz")
            assert ready.status_code == 503
            assert ready.json()["database"] == "unreachable"
            down = httpx.post(f"{base}/occurrences", json=occurrence(), headers=auth(ADMIN_TOKEN))
            assert_error(down, 503, "service_unavailable")
            assert int(down.headers["Retry-After"]) >= 1
            assert_error(
                httpx.get(f"{base}/issues", headers=auth(ADMIN_TOKEN)), 503, "service_unavailable"
            )
            # Both workers retry, one line each time.
            _wait_for(
                lambda: log.read_text().count("database not ready") >= 4, deadline, "retries", log
            )
            _assert_no_traceback(log)

            proxy.open()
            appeared = time.monotonic()
            deadline = appeared + READY_DEADLINE
            _wait_for(
                lambda: getattr(_get(f"{base}/readyz"), "status_code", 0) == 200,
                deadline,
                "/readyz 200",
                log,
            )
            print(f"\nserve: ready {time.monotonic() - appeared:.2f}s after the database appeared")
            _wait_for(
                lambda: log.read_text().count("database ready") == 2, deadline, "both workers", log
            )
            created = httpx.post(
                f"{base}/occurrences", json=occurrence(), headers=auth(ADMIN_TOKEN)
            )
            assert created.status_code == 202, created.text
            assert created.json()["outcome"] == "created"
        output = log.read_text()
        # The migrations ran once, in one of the two workers.
        assert output.count("Running upgrade  -> 0001") == 1, output
        _assert_no_traceback(log)
    finally:
        proxy.close()


def test_consume_waits_for_postgres_then_consumes(scratch_postgres: str, tmp_path: Path) -> None:
    pytest.importorskip("confluent_kafka")
    database = make_url(scratch_postgres)
    proxy = LateProxy((database.host or "127.0.0.1", database.port or 5432))
    url = database.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    log = tmp_path / "consume.log"
    # No broker needed: the test ends once the consumer subscribed.
    args = ["consume", "--bootstrap-servers", f"127.0.0.1:{free_port()}"]
    try:
        with _running(args, _environment(tmp_path, database_url=url), log):
            deadline = time.monotonic() + START_DEADLINE
            _wait_for(
                lambda: "database not ready (attempt 2)" in log.read_text(), deadline, "retry", log
            )
            assert "consuming" not in log.read_text()
            proxy.open()
            appeared = time.monotonic()
            _wait_for(
                lambda: "consuming ingest-occurrences" in log.read_text(),
                appeared + READY_DEADLINE,
                "consuming",
                log,
            )
            print(f"\nconsume: consuming {time.monotonic() - appeared:.2f}s after the database")
        assert "Running upgrade  -> 0001" in log.read_text()
        _assert_no_traceback(log)
    finally:
        proxy.close()


def test_app_on_a_sqlite_folder_that_appears_later_gets_ready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite cannot open a file in a folder that does not exist: the database is "down".
    folder = tmp_path / "later"
    settings = Settings(
        database_url=f"sqlite:///{folder / 'db.sqlite'}",
        data_dir=tmp_path / "data",
        admin_token=ADMIN_TOKEN,
    )
    from app.main import create_app

    app = create_app(settings, start_workers=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(auth(ADMIN_TOKEN))
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json()["database"] == "unreachable"
        assert_error(client.post("/occurrences", json=occurrence()), 503, "service_unavailable")
        assert_error(client.get("/issues"), 503, "service_unavailable")
        assert client.get("/openapi.json").status_code == 200
        folder.mkdir()
        deadline = time.monotonic() + READY_DEADLINE
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.05)
        response = client.post("/occurrences", json=occurrence())
        assert response.status_code == 202, response.text
    # The periodic jobs waited for the start-up instead of failing against a missing database.
    assert not [r for r in caplog.records if r.name == "app.jobs.runner" and r.exc_info]
    assert any("database not ready" in r.getMessage() for r in caplog.records)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or a scratch PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("scratch_postgres")
    return url


def test_processes_migrating_together_take_turns(empty_database: str) -> None:
    from app.db import Database, create_db_engine
    from app.migrations import head_revision
    from app.system.service import current_revision
    from app.system.startup import migrate_database

    databases = [Database(create_db_engine(empty_database)) for _ in range(3)]
    barrier = threading.Barrier(len(databases))
    errors: list[BaseException] = []

    def start(db: Database) -> None:
        barrier.wait()
        try:
            migrate_database(db, empty_database)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        assert current_revision(databases[0].engine) == head_revision()
        with databases[0].engine.connect() as conn:
            slugs = conn.execute(text("SELECT slug FROM organizations")).scalars().all()
        assert slugs == ["default"]
    finally:
        for db in databases:
            db.dispose()


# Short start-up errors: each a subprocess run of the CLI.


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli(), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _assert_short_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= MAX_ERROR_LINES, result.stderr
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in result.stderr, result.stderr


def test_bad_setting_names_the_variable_traceback_only_at_debug(tmp_path: Path) -> None:
    env = _environment(tmp_path, max_body_bytes="lots")
    result = _run(["serve", "--port", str(free_port())], env, tmp_path)
    _assert_short_error(result, "ISSUE_PLATFORM_MAX_BODY_BYTES", "'lots'", "fix:")
    assert result.returncode == 2
    debug = _run(
        ["serve", "--port", str(free_port())],
        {**env, "ISSUE_PLATFORM_LOG_LEVEL": "DEBUG"},
        tmp_path,
    )
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr
    assert "ISSUE_PLATFORM_MAX_BODY_BYTES" in debug.stderr


def test_consume_without_kafka_extra_says_what_to_install_before_touching_the_database(
    tmp_path: Path,
) -> None:
    # A confluent_kafka that cannot be imported, ahead of the installed one on the path.
    shadow = tmp_path / "shadow" / "confluent_kafka"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'confluent_kafka'\", name='confluent_kafka')\n"
    )
    env = _environment(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shadow.parent), env.get("PYTHONPATH")]))
    result = _run(["consume", "--bootstrap-servers", "127.0.0.1:9"], env, tmp_path)
    _assert_short_error(result, "pip install 'issue-platform[kafka]'", "confluent-kafka")
    # Checked before the database: the default SQLite file was not even created.
    assert not (tmp_path / "data" / "issue_platform.db").exists()


def test_duplicate_plugin_names_both_types(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    module = """
        from dataclasses import dataclass

        from app.issue_types.registry import GroupCategory, GroupType


        @dataclass(frozen=True)
        class {name}(GroupType):
            type_id = 31338
            slug = "{slug}"
            description = "Twin"
            category = GroupCategory.PERFORMANCE.value
    """
    entry_points = []
    for n in (1, 2):
        (plugins / f"twin_plugin_{n}.py").write_text(
            textwrap.dedent(module.format(name=f"TwinType{n}", slug=f"twin_{n}"))
        )
        entry_points.append(f"twin{n} = twin_plugin_{n}")
    dist = plugins / "twin_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: twin-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(entry_points))
    env = {**_environment(tmp_path), "PYTHONPATH": str(plugins)}
    result = _run(["serve", "--port", str(free_port())], env, tmp_path)
    _assert_short_error(result, "31338", "twin_plugin_1.TwinType1", "twin_plugin_2.TwinType2")
    assert "uninstall the conflicting plugin" in result.stderr


def test_plugin_with_a_builtin_type_id_names_both_types(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    module = """
        from dataclasses import dataclass

        from app.issue_types.registry import GroupCategory, GroupType


        @dataclass(frozen=True)
        class ErrorTwin(GroupType):
            type_id = 1
            slug = "error_twin"
            description = "Twin of a built-in"
            category = GroupCategory.ERROR.value
    """
    (plugins / "error_twin_plugin.py").write_text(textwrap.dedent(module))
    dist = plugins / "error_twin_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: error-twin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntwin = error_twin_plugin\n")
    env = {**_environment(tmp_path), "PYTHONPATH": str(plugins)}
    result = _run(["serve", "--port", str(free_port())], env, tmp_path)
    _assert_short_error(result, "type_id 1", "ErrorGroupType", "error_twin_plugin.ErrorTwin")
    assert "uninstall the conflicting plugin" in result.stderr


def test_port_in_use_names_the_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(["serve", "--port", str(port)], _environment(tmp_path), tmp_path)
    _assert_short_error(result, f"port {port}", "--port")


def test_migrate_with_database_down_is_short_and_hides_the_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{free_port()}/nowhere"
    result = _run(["migrate"], _environment(tmp_path, database_url=url), tmp_path)
    _assert_short_error(result, "ISSUE_PLATFORM_DATABASE_URL", "Connection refused")
    assert "hunter2" not in result.stderr
