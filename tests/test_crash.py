"""A real ``serve`` process killed (SIGKILL) or stopped (SIGTERM) while clients post occurrences:
every answered occurrence is stored exactly once, and the service picks up where it left off."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.builders import occurrence
from tests.conftest import ADMIN_TOKEN
from tests.processes import free_port

CLIENTS = 3
MAX_REQUESTS_PER_CLIENT = 300
FINGERPRINTS = 5
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Server:
    """One ``issue-platform serve`` subprocess on 127.0.0.1."""

    def __init__(self, workdir: Path, db_url: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        self.env = {
            **os.environ,
            "ISSUE_PLATFORM_DATA_DIR": str(workdir / "data"),
            "ISSUE_PLATFORM_DATABASE_URL": db_url,
            "ISSUE_PLATFORM_ADMIN_TOKEN": ADMIN_TOKEN,
            "ISSUE_PLATFORM_JOBS_INTERVAL_SECONDS": "0.5",
            "ISSUE_PLATFORM_LOG_FORMAT": "json",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "app", "serve", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not start: {self.log.read_text()}")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Traffic:
    """Occurrence ids sent, and those answered as accepted."""

    sent: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def _payload(n: int) -> dict[str, Any]:
    return occurrence(id=uuid.uuid4().hex, fingerprint=[f"crash-{n % FINGERPRINTS}"])


def _client(base: str, traffic: Traffic, seed: int) -> None:
    with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
        for n in range(MAX_REQUESTS_PER_CLIENT):
            if traffic.stop.is_set():
                return
            batch = n % 4 == 3
            items = [_payload(seed + n + k) for k in range(5 if batch else 1)]
            with traffic.lock:
                traffic.sent.extend(item["id"] for item in items)
            try:
                if batch:
                    response = client.post("/occurrences/batch", json={"occurrences": items})
                else:
                    response = client.post("/occurrences", json=items[0])
            except httpx.HTTPError:
                return  # the server is gone: this request's fate is unknown
            if response.status_code == 202:
                accepted = [response.json()]
            elif response.status_code == 200:
                accepted = [r for r in response.json()["results"] if "outcome" in r]
            else:
                continue  # 503 while stopping: not acknowledged, may be sent again
            with traffic.lock:
                traffic.answered.extend(r["occurrence_id"] for r in accepted)


def _run_traffic(base: str) -> tuple[Traffic, list[threading.Thread]]:
    traffic = Traffic()
    threads = [
        threading.Thread(target=_client, args=(base, traffic, c * 10_000), daemon=True)
        for c in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    return traffic, threads


def _wait_for_answers(traffic: Traffic, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with traffic.lock:
            if len(traffic.answered) >= count:
                return
        time.sleep(0.02)
    raise AssertionError("too few answers before the deadline")


def _times_seen_total(get: Any) -> int:
    total = 0
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 100, "project": 1}
        if cursor:
            params["cursor"] = cursor
        page = get("/issues", params=params).json()
        total += sum(issue["times_seen"] for issue in page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return total
    raise AssertionError("too many issue pages")


def _verify_and_resend(client: Any, traffic: Traffic) -> None:
    """Answered ids are stored; counts match; re-sending stores only what was missing, once."""
    answered = set(traffic.answered)
    assert len(answered) == len(traffic.answered), "an id was answered twice"
    stored = set()
    for occurrence_id in traffic.sent:
        response = client.get(f"/occurrences/{occurrence_id}", params={"project_id": 1})
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200:
            stored.add(occurrence_id)
    assert answered <= stored, f"lost acknowledged occurrences: {answered - stored}"
    assert _times_seen_total(client.get) == len(stored)

    outcomes: dict[str, str] = {}
    ids = list(traffic.sent)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        items = [occurrence(id=i, fingerprint=["crash-resend"]) for i in chunk]
        response = client.post("/occurrences/batch", json={"occurrences": items})
        assert response.status_code == 200, response.text
        for i, result in zip(chunk, response.json()["results"], strict=True):
            outcomes[i] = result["outcome"]
    for occurrence_id in ids:
        expected = "duplicate" if occurrence_id in stored else outcomes[occurrence_id]
        assert outcomes[occurrence_id] == expected
        if occurrence_id not in stored:
            assert outcomes[occurrence_id] in ("created", "grouped")
    assert _times_seen_total(client.get) == len(set(ids))


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path, db_url)
    try:
        yield running
    finally:
        running.stop()


def test_sigkill_mid_stream_loses_no_acknowledged_occurrence(server: Server, db_url: str) -> None:
    server.start()
    traffic, threads = _run_traffic(server.base)
    _wait_for_answers(traffic, 60)
    server.signal(signal.SIGKILL)
    server.wait(timeout=10)
    traffic.stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)

    restarted = Server(server.workdir, db_url)
    restarted.start()
    try:
        with httpx.Client(base_url=restarted.base, headers=HEADERS, timeout=30) as client:
            _verify_and_resend(client, traffic)
    finally:
        restarted.stop()


def test_sigterm_drains_requests_and_exits_zero(server: Server, settings: Settings) -> None:
    server.start()
    traffic, threads = _run_traffic(server.base)
    _wait_for_answers(traffic, 30)
    server.signal(signal.SIGTERM)
    started = time.monotonic()
    code = server.wait(timeout=20)
    elapsed = time.monotonic() - started
    traffic.stop.set()
    for t in threads:
        t.join(timeout=30)
    log = server.log.read_text()
    assert code == 0, log
    assert elapsed < 10, f"took {elapsed:.1f}s to stop"
    records = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r["message"] == "stopped cleanly" for r in records), log
    assert not any(r["level"] in ("ERROR", "CRITICAL") for r in records), log

    from app.main import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers.update(HEADERS)
        _verify_and_resend(client, traffic)
