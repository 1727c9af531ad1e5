"""The HTTP producer's retries against a real ``issue-platform serve`` process.

No mock transport and no patched sleep: connection errors come from a port nobody listens on
(before the server starts, and after it stopped), 429 with ``Retry-After`` from the service's own
ingest rate limit, 503 from a database made unavailable for real (see tests/outage.py). Each
test checks what the producer returned and that the service stored the occurrence exactly once.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.producer import HttpTransport, IssueOccurrence, ProduceError, produce_occurrence
from tests.conftest import ADMIN_TOKEN
from tests.outage import database_outage
from tests.processes import cli, free_port

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Server:
    """``issue-platform serve`` on a fixed loopback port; can be stopped and started again."""

    def __init__(self, db_url: str, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir / f"serve-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUE_PLATFORM_")}
        self.env.update(
            {
                "ISSUE_PLATFORM_DATABASE_URL": db_url,
                "ISSUE_PLATFORM_ADMIN_TOKEN": ADMIN_TOKEN,
                "ISSUE_PLATFORM_DATA_DIR": str(workdir / "data"),
                "ISSUE_PLATFORM_RUN_JOBS": "false",
                **env,
            }
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*cli(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve not ready within 60 s:\n{self.tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, headers=HEADERS, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def make_server(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Build servers (not started) on the test database; all stopped afterwards."""
    made: list[Server] = []

    def make(**env: str) -> Server:
        server = Server(
            db_url, tmp_path, {f"ISSUE_PLATFORM_{k.upper()}": v for k, v in env.items()}
        )
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def detection(fingerprint: str) -> IssueOccurrence:
    return IssueOccurrence(
        id=uuid.uuid4().hex,
        project_id=1,
        fingerprint=[fingerprint],
        issue_title=f"Problem {fingerprint}",
        subtitle="seen by a real producer",
        type=1,
        detection_time=datetime(2026, 11, 2, 11, 0, tzinfo=UTC),
    )


def produce(transport: HttpTransport, item: IssueOccurrence) -> dict[str, Any]:
    event = {"event_id": uuid.uuid4().hex, "platform": "python", "timestamp": 1793617200.0}
    answer = produce_occurrence(occurrence=item, event_data=event, transport=transport)
    assert answer is not None
    return answer


class Sending:
    """One ``produce`` call on a thread, so the test can act while the producer retries."""

    def __init__(self, transport: HttpTransport, item: IssueOccurrence) -> None:
        self.answer: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(transport, item), daemon=True)
        self.thread.start()

    def _run(self, transport: HttpTransport, item: IssueOccurrence) -> None:
        try:
            self.answer = produce(transport, item)
        except BaseException as exc:
            self.error = exc

    def result(self) -> dict[str, Any]:
        self.thread.join(timeout=90)
        assert not self.thread.is_alive(), "the producer is still retrying"
        assert self.error is None, repr(self.error)
        assert self.answer is not None
        return self.answer


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def retries_logged(caplog: pytest.LogCaptureFixture, fragment: str) -> int:
    return sum(r.name == "app.producer" and fragment in r.getMessage() for r in caplog.records)


def stored_once(server: Server, item: IssueOccurrence, times_seen: int) -> None:
    """The occurrence is stored, and its issue counts exactly the occurrences sent."""
    assert server.get(f"/occurrences/{item.id}", project_id=1)["id"] == item.id
    issues = server.get("/issues", limit=100)["data"]
    assert [(i["title"], i["times_seen"]) for i in issues] == [(item.issue_title, times_seen)]


def test_connection_errors_are_retried_until_the_server_listens_and_reported_when_it_is_gone(
    make_server: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.producer")
    server = make_server()
    transport = HttpTransport(server.url, ADMIN_TOKEN, retries=8, backoff_seconds=0.1)
    try:
        item = detection("conn")
        # The producer starts first: its connections are refused until the server listens.
        sending = Sending(transport, item)
        wait_for(lambda: retries_logged(caplog, "POST /ingest failed") >= 1, "a refused connection")
        server.start()
        assert sending.result()["outcome"] == "created"
        stored_once(server, item, times_seen=1)
    finally:
        transport.close()

    # The server goes away under a producer holding a kept-alive connection: the retries fail
    # too, and the producer reports the connection error instead of an answer.
    giving_up = HttpTransport(server.url, ADMIN_TOKEN, retries=2, backoff_seconds=0.01)
    try:
        assert produce(giving_up, detection("conn"))["outcome"] == "grouped"
        server.stop()
        before = retries_logged(caplog, "POST /ingest failed")
        with pytest.raises(ProduceError, match="POST /ingest failed") as failed:
            produce(giving_up, detection("conn"))
    finally:
        giving_up.close()
    assert failed.value.status_code is None
    assert isinstance(failed.value.__cause__, httpx.TransportError)
    assert retries_logged(caplog, "POST /ingest failed") - before == 2


def test_429_is_retried_after_the_retry_after_the_service_sent(
    make_server: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    """Half a token per second, one in the bucket: the second message waits ``Retry-After: 2``.

    The producer's own backoff (10 ms, three retries: 70 ms in all) is far shorter than the
    refill; only by waiting what ``Retry-After`` says does the retry get through.
    """
    caplog.set_level(logging.WARNING, logger="app.producer")
    server = make_server(ingest_rate_limit_per_second="0.5", ingest_rate_limit_burst="1")
    server.start()
    transport = HttpTransport(server.url, ADMIN_TOKEN, retries=3, backoff_seconds=0.01)
    try:
        first, second = detection("rate"), detection("rate")
        assert produce(transport, first)["outcome"] == "created"
        assert produce(transport, second)["outcome"] == "grouped"
    finally:
        transport.close()
    assert retries_logged(caplog, "answered 429") == 1
    stored_once(server, second, times_seen=2)

    # Without retries, the same limit refuses with the service's own answer.
    refusing = HttpTransport(server.url, ADMIN_TOKEN, retries=0)
    try:
        with pytest.raises(ProduceError) as refused:  # the bucket is empty now
            produce(refusing, detection("rate"))
    finally:
        refusing.close()
    assert refused.value.status_code == 429


def test_503_of_an_unavailable_database_is_retried_until_it_is_back(
    make_server: Callable[..., Server], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The database refuses work for real (tests/outage.py: a held write lock on SQLite, no
    connections on PostgreSQL); the service answers 503 with ``Retry-After: 1`` meanwhile."""
    caplog.set_level(logging.WARNING, logger="app.producer")
    server = make_server(sqlite_busy_timeout_ms="100", db_connect_timeout_seconds="2")
    server.start()
    transport = HttpTransport(server.url, ADMIN_TOKEN, retries=6, backoff_seconds=0.05)
    item = detection("outage")
    try:
        with database_outage(db_url):
            sending = Sending(transport, item)
            wait_for(lambda: retries_logged(caplog, "answered 503") >= 1, "a 503 answer")
        assert sending.result()["outcome"] == "created"
    finally:
        transport.close()
    stored_once(server, item, times_seen=1)
