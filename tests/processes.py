"""Helpers for tests that run the service as a real process: free ports and the CLI to start."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli() -> list[str]:
    """The command that runs ``issue-platform`` of the interpreter running the tests."""
    script = Path(sys.executable).with_name("issue-platform")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "app"]


def wait_ready(
    base: str, process: subprocess.Popen[Any], log: Path, *, within: float = 60.0
) -> None:
    """Wait until ``base``/readyz answers 200; fail with the log's end if the process dies first."""
    deadline = time.monotonic() + within
    while True:
        assert process.poll() is None, log.read_text(errors="replace")[-4000:]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
        time.sleep(0.1)


def stop(process: subprocess.Popen[Any], *, within: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited ``within`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
