"""Helpers for tests that run the service as a real process: free ports and the CLI to start."""

from __future__ import annotations

import socket
import sys
from pathlib import Path


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
