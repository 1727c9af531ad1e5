"""Starting and stopping the servers under test, pinning, PostgreSQL databases, worker RSS."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
SERVER_CPUS = "0"
LOADGEN_CPUS = "1"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """Direct children of a process (from /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def proc_status(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/<pid>/status, in bytes (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Server:
    """A server process we started, in its own process group."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    workers: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The processes answering requests (the server itself when it has one worker)."""
        if self.workers == 1:
            return [self.proc.pid]
        pids = []
        for pid in children(self.proc.pid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in cmd:
                pids.append(pid)
        return pids

    def peak_rss(self) -> list[int]:
        """VmHWM of every worker, bytes."""
        return [proc_status(p, "VmHWM") for p in self.worker_pids()]

    def rss(self) -> list[int]:
        """VmRSS of every worker, bytes."""
        return [proc_status(p, "VmRSS") for p in self.worker_pids()]

    def stop(self) -> None:
        """Stop the server's process group (ours), gently then firmly."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _wait_ready(server: Server, path: str, timeout: float = 90.0, *, consecutive: int = 1) -> None:
    """Wait for ``consecutive`` answers below 500 in a row, each on a new connection.

    Every worker of ``serve`` readies its own database connection after the start (it answers
    503 until then), and the kernel hands new connections to any worker: several answers in a
    row make it very likely that all of them are ready.
    """
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited early, see {server.log}:\n{server.log.read_text()}")
        try:
            answered = httpx.get(server.base + path, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            answered = False
        workers_up = server.workers == 1 or len(server.worker_pids()) >= server.workers
        streak = streak + 1 if answered and workers_up else 0
        if streak >= consecutive:
            return
        time.sleep(0.2 if streak == 0 else 0.01)
    server.stop()
    raise RuntimeError(f"server not ready after {timeout}s, see {server.log}")


def _spawn(cmd: list[str], env: dict[str, str], log: Path, cpus: str, workers: int) -> Server:
    log.parent.mkdir(parents=True, exist_ok=True)
    port = int(cmd[cmd.index("--port") + 1])
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            ["taskset", "-c", cpus, *cmd],
            env={**os.environ, **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
        )
    return Server(proc=proc, port=port, log=log, workers=workers)


def service_cpus(workers: int) -> str:
    """Cores of the service: one core for one worker; with more, every core (shared with wrk)."""
    return SERVER_CPUS if workers == 1 else f"0-{(os.cpu_count() or 2) - 1}"


def start_service(
    *, data_dir: Path, database_url: str | None, workers: int, admin_token: str
) -> Server:
    """``issue-platform serve`` on a free port, once every worker is ready (migrated, seeded)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "ISSUE_PLATFORM_DATA_DIR": str(data_dir),
        "ISSUE_PLATFORM_ADMIN_TOKEN": admin_token,
        # Measure the request path alone: on a freshly filled database the periodic jobs would
        # move every week-old "new" issue to "ongoing" while the load runs.
        "ISSUE_PLATFORM_RUN_JOBS": "false",
    }
    if database_url:
        env["ISSUE_PLATFORM_DATABASE_URL"] = database_url
    else:
        os.environ.pop("ISSUE_PLATFORM_DATABASE_URL", None)
    cmd = [str(VENV_BIN / "issue-platform"), "serve", "--port", str(free_port())]
    cmd += ["--workers", str(workers)]
    server = _spawn(cmd, env, data_dir / "server.log", service_cpus(workers), workers)
    # /readyz, not /healthz: the process answers /healthz before its database is ready.
    _wait_ready(server, "/readyz", consecutive=1 if workers == 1 else 20 * workers)
    return server


def start_ceiling(log_dir: Path) -> Server:
    """The bench-only ceiling app under uvicorn with the service's settings, one worker."""
    cmd = [str(VENV_BIN / "python"), "-m", "bench.ceiling_app", "--port", str(free_port())]
    env = {"PYTHONPATH": str(ROOT)}
    server = _spawn(cmd, env, log_dir / "ceiling.log", SERVER_CPUS, 1)
    _wait_ready(server, "/healthz")
    return server


def create_pg_database(prefix: str) -> tuple[str, str]:
    """A fresh, empty PostgreSQL database: (name, SQLAlchemy URL)."""
    name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(name: str) -> None:
    """Drop a database this bench created."""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def pin_postgres(cpus: set[int]) -> dict[int, set[int]] | None:
    """Pin every PostgreSQL process to ``cpus``; the old affinities, or None if not allowed."""
    old: dict[int, set[int]] = {}
    try:
        for pid in _postgres_pids():
            old[pid] = os.sched_getaffinity(pid)
            os.sched_setaffinity(pid, cpus)
    except (PermissionError, ProcessLookupError):
        restore_postgres(old)
        return None
    return old


def restore_postgres(old: dict[int, set[int]]) -> None:
    """Give PostgreSQL back its affinities (new backends inherit the postmaster's)."""
    for pid, cpus in old.items():
        try:
            os.sched_setaffinity(pid, cpus)
        except (PermissionError, ProcessLookupError):
            continue
