"""Stalled requests and too many connections, against a real ``issue-platform serve``.

A request whose body stops arriving is answered 408 ``request_timeout`` once the body time
limit (``ISSUE_PLATFORM_BODY_TIMEOUT_SECONDS``) has passed, on every route (the ingest fast
path included), and its connection is closed. A connection beyond
``ISSUE_PLATFORM_MAX_CONNECTIONS`` is answered 503 by the server.

The clients are raw sockets (an HTTP client would not send half a body). The socket time-outs
only keep a broken server from hanging the test: the assertions are on what the server answers,
never on how long it took.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.processes import cli, free_port, stop, wait_ready

# Deadlines: generous, they only bound a test that would otherwise hang.
START_DEADLINE = 60.0
ANSWER_DEADLINE = 30.0
BODY_TIMEOUT = "1"
MAX_CONNECTIONS = 3


@contextlib.contextmanager
def _serve(tmp_path: Path, name: str, **settings: str) -> Iterator[int]:
    """A ``serve`` process on SQLite with the given settings; yields its port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUE_PLATFORM_")}
    env.update(
        {
            "ISSUE_PLATFORM_DATA_DIR": str(tmp_path / name),
            "ISSUE_PLATFORM_ADMIN_TOKEN": ADMIN_TOKEN,
            "ISSUE_PLATFORM_RUN_JOBS": "false",
        }
    )
    env.update({f"ISSUE_PLATFORM_{k.upper()}": v for k, v in settings.items()})
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cli(), "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log, within=START_DEADLINE)
        yield port
        assert process.poll() is None, log.read_text()
    finally:
        stop(process)


@pytest.fixture(scope="module")
def stall_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A server with a 1 s body time limit."""
    with _serve(tmp_path_factory.mktemp("stall"), "data", body_timeout_seconds=BODY_TIMEOUT) as p:
        yield p


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A server accepting at most MAX_CONNECTIONS connections (and a long body time limit)."""
    with _serve(
        tmp_path_factory.mktemp("capped"),
        "data",
        max_connections=str(MAX_CONNECTIONS),
        body_timeout_seconds="600",
    ) as port:
        yield port


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_DEADLINE)
    return sock


def _head(method: str, path: str, *extra: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "Content-Type: application/json",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one answer with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of the answer"
        body += chunk
    return int(status_line.split()[1]), headers, body


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection (reads end of file)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/occurrences"),  # the ingest fast path
        ("POST", "/occurrences/batch"),  # the fast path, batch body limit
        ("POST", "/ingest"),
        ("POST", "/admin/organizations"),
        ("PATCH", "/issues/1"),
        ("DELETE", "/admin/keys/1"),  # a method that rarely has a body, with one
    ],
)
def test_a_body_that_stops_arriving_gets_408_and_the_connection_closes(
    stall_server: int, method: str, path: str
) -> None:
    with _connect(stall_server) as sock:
        sock.sendall(_head(method, path, "Content-Length: 1000") + b'{"project_')
        status, headers, body = _read_answer(sock)
        assert status == 408, body
        assert json.loads(body)["error"]["code"] == "request_timeout"
        assert headers["connection"] == "close"
        assert headers.get("x-request-id")
        assert _closed(sock)


def test_a_chunked_body_that_stops_arriving_gets_408(stall_server: int) -> None:
    with _connect(stall_server) as sock:
        sock.sendall(
            _head("POST", "/occurrences", "Transfer-Encoding: chunked") + b'a\r\n{"project_'
        )
        status, _, body = _read_answer(sock)
        assert status == 408, body
        assert json.loads(body)["error"]["code"] == "request_timeout"
        assert _closed(sock)


def test_a_body_that_arrives_whole_is_answered_as_usual(stall_server: int) -> None:
    with _connect(stall_server) as sock:
        sock.sendall(_head("POST", "/admin/organizations", "Content-Length: 2") + b"{}")
        status, _, body = _read_answer(sock)
        assert status == 422, body  # the usual answer to a body without a name: no time-out
        assert json.loads(body)["error"]["code"] == "invalid_payload"


def test_the_connection_after_the_cap_gets_503_and_a_freed_slot_serves_again(
    capped_server: int,
) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            sock = _connect(capped_server)
            held.append(sock)
            # One answered request proves the server has taken the connection; the next one
            # stalls in its body and keeps the connection busy.
            sock.sendall(_head("GET", "/healthz"))
            assert _read_answer(sock)[0] == 200
            sock.sendall(_head("POST", "/occurrences", "Content-Length: 1000") + b"{")
        with _connect(capped_server) as extra:
            extra.sendall(_head("GET", "/healthz"))
            status, _, _ = _read_answer(extra)
            assert status == 503
        held.pop().close()
        # The server notices the closed connection by itself; until then the cap still counts it.
        deadline = time.monotonic() + ANSWER_DEADLINE
        while True:
            with _connect(capped_server) as again:
                again.sendall(_head("GET", "/healthz"))
                if _read_answer(again)[0] == 200:
                    break
            assert time.monotonic() < deadline, "a freed connection slot was never reused"
            time.sleep(0.05)
    finally:
        for sock in held:
            sock.close()
