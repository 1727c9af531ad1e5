"""The group-commit writer against real database failures (no fake of the writer or the store).

One request of a group is made to fail for real: a trigger on ``occurrences`` rejects the row of
an occurrence titled ``poison`` at insert time, as a constraint would. The writer must replay the
group one request at a time, so that the others are stored and only the poisoned request gets
the error. The same holds for the ``thread`` writer (``ingest_writer = "thread"``), which is also
run end to end over HTTP. On PostgreSQL a real deadlock (two transactions locking in opposite
order) is provoked against the ingest transaction, which must be retried by ``_retrying``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from app.auth.principal import Principal
from app.config import Settings
from app.context import AppContext
from app.issues.fingerprint import fingerprint_hashes
from app.main import create_app
from app.occurrences.ingest.outcomes import IngestResult
from app.occurrences.ingest.usecase import ingest_occurrences
from app.occurrences.ingest.usecase import lock_key as _lock_key
from app.occurrences.ingest.writer import GroupCommitWriter
from tests.builders import occurrence
from tests.conftest import ON_POSTGRES, FakeClock

POISON = "poison"
REPLAY_LOG = "replaying requests alone"


@pytest.fixture
def ctx(own_ctx: AppContext) -> AppContext:
    """A context of its own on the test database."""
    return own_ctx


@contextmanager
def poisoned(ctx: AppContext) -> Iterator[None]:
    """A trigger that rejects, at insert time, every occurrence titled ``poison``.

    On PostgreSQL the database outlives the test (it is only truncated), so the trigger and its
    function are dropped afterwards.
    """
    with ctx.db.engine.begin() as conn:
        if ctx.db.sqlite:
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON occurrences "
                f"WHEN NEW.issue_title = '{POISON}' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned occurrence'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION poison_check() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.issue_title = '{POISON}' THEN "
                "RAISE EXCEPTION 'poisoned occurrence' USING ERRCODE = 'check_violation'; "
                "END IF; RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON occurrences "
                "FOR EACH ROW EXECUTE FUNCTION poison_check()"
            )
    try:
        yield
    finally:
        with ctx.db.engine.begin() as conn:
            conn.exec_driver_sql(
                "DROP TRIGGER IF EXISTS poison" + ("" if ctx.db.sqlite else " ON occurrences")
            )
            if not ctx.db.sqlite:
                conn.exec_driver_sql("DROP FUNCTION IF EXISTS poison_check()")


def stored_ids(ctx: AppContext) -> set[str]:
    with ctx.db.read() as session:
        return {row[0] for row in session.execute(text("SELECT id FROM occurrences"))}


def item(title: str = "fine", fingerprint: str = "writer") -> dict[str, Any]:
    return occurrence(issue_title=title, fingerprint=[fingerprint])


def check_replayed(
    requests: list[list[dict[str, Any]]], answers: list[Any], poisoned_index: int
) -> None:
    """Every request but the poisoned one is answered 202; the poisoned one gets the DB error."""
    for index, (raws, answer) in enumerate(zip(requests, answers, strict=True)):
        if index == poisoned_index:
            assert isinstance(answer, IntegrityError), answer
            assert "poisoned occurrence" in str(answer)
            continue
        assert not isinstance(answer, BaseException), f"request {index} failed: {answer!r}"
        assert [r.status_code for r in answer] == [202] * len(raws)
        assert [r.body["occurrence_id"] for r in answer] == [raw["id"] for raw in raws]


def test_inline_writer_replays_a_failed_group_one_request_at_a_time(
    ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.occurrences.ingest.writer")
    requests = [[item(), item(fingerprint="other")], [item(POISON)], [item()]]

    async def submit_together() -> list[Any]:
        writer = GroupCommitWriter(ctx, max_items=100, inline=True, gate=ctx.db.checkpoint_gate)
        # Submitted in one loop iteration: the inline writer gathers them into one transaction.
        calls = [writer.submit(raws, Principal.admin()) for raws in requests]
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 60)

    with poisoned(ctx):
        answers = asyncio.run(submit_together())

    assert sum(REPLAY_LOG in r.getMessage() for r in caplog.records) == 1, "one group failed"
    check_replayed(requests, answers, poisoned_index=1)
    assert [r.body["outcome"] for r in answers[0]] == ["created", "created"]
    assert answers[2][0].body["outcome"] == "grouped"
    fine = {raw["id"] for index in (0, 2) for raw in requests[index]}
    assert stored_ids(ctx) == fine


class WatchedGate:
    """A real lock for the writer's gate that also tells when the writer thread waits on it.

    The test holds it (as the WAL checkpointer does) to make requests queue up into one group.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = threading.Event()

    def __enter__(self) -> WatchedGate:
        self.waiting.set()
        self.lock.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.lock.release()


def test_thread_writer_replays_a_failed_group_one_request_at_a_time(
    ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.occurrences.ingest.writer")
    first = [item(fingerprint="first")]
    requests = [[item()], [item(POISON)], [item(), item(fingerprint="other")]]
    gate = WatchedGate()
    writer = GroupCommitWriter(ctx, max_items=100, inline=False, gate=cast(threading.Lock, gate))

    async def submit() -> tuple[Any, list[Any]]:
        with gate.lock:
            # The writer thread takes the first request and waits for the gate ...
            lone = asyncio.ensure_future(writer.submit(first, Principal.admin()))
            assert await asyncio.to_thread(gate.waiting.wait, 30), "writer thread never ran"
            # ... while these three queue up behind it, and form the next group.
            calls = [
                asyncio.ensure_future(writer.submit(raws, Principal.admin())) for raws in requests
            ]
            await asyncio.sleep(0)  # each call has queued its job now
        group = asyncio.gather(*calls, return_exceptions=True)
        return await asyncio.wait_for(asyncio.gather(lone, group), 60)

    try:
        with poisoned(ctx):
            lone, answers = asyncio.run(submit())
    finally:
        writer.close()

    assert writer._thread is not None and not writer._thread.is_alive()
    assert lone[0].status_code == 202
    assert sum(REPLAY_LOG in r.getMessage() for r in caplog.records) == 1, "one group failed"
    check_replayed(requests, answers, poisoned_index=1)
    fine = {raw["id"] for index in (0, 2) for raw in requests[index]}
    assert stored_ids(ctx) == fine | {first[0]["id"]}


def test_thread_writer_serves_real_ingest_over_http(settings: Settings, clock: FakeClock) -> None:
    """``ingest_writer = "thread"``: the HTTP ingest endpoints go through the writer thread."""
    app = create_app(settings.model_copy(update={"ingest_writer": "thread"}), clock=clock)
    headers = {"Authorization": f"Bearer {settings.admin_token}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        single = item(fingerprint="thread-a")
        response = client.post("/occurrences", json=single, headers=headers)
        assert response.status_code == 202, response.text
        assert response.json()["outcome"] == "created"
        writer = app.state.ctx.ingest_writer
        assert not writer.inline
        thread = writer._thread
        assert thread is not None and thread.is_alive() and thread.name == "ingest-writer"

        batch = [item(fingerprint="thread-a"), item(fingerprint="thread-b")]
        response = client.post("/occurrences/batch", json={"occurrences": batch}, headers=headers)
        assert response.status_code == 200, response.text
        outcomes = [r["outcome"] for r in response.json()["results"]]
        assert outcomes == ["grouped", "created"]

        again = client.post("/occurrences", json=single, headers=headers)
        assert again.json()["outcome"] == "duplicate"

        issues = client.get("/issues", headers=headers).json()["data"]
        assert sorted((i["title"], i["times_seen"]) for i in issues) == [("fine", 1), ("fine", 2)]
    # Leaving the app closes the writer, which stops its thread.
    assert not thread.is_alive()


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="deadlocks and their retry (SQLSTATE 40P01) exist on PostgreSQL only; "
    "SQLite serialises writers with one database lock",
)
def test_a_real_deadlock_with_the_ingest_transaction_is_retried(
    settings: Settings, clock: FakeClock, ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    """The ingest transaction takes the fingerprint's advisory lock, then the issue's row lock.

    Another transaction holds the row and then asks for the advisory lock: a real deadlock.
    The ingest side has the shorter ``deadlock_timeout`` (3 s against 60 s), so PostgreSQL aborts
    it with 40P01; ``_retrying`` must run it again, and it then succeeds once the other
    transaction is done.
    """
    caplog.set_level(logging.INFO, logger="app.occurrences.ingest.retry")
    [first] = ingest_occurrences(ctx, [item(fingerprint="dl")], principal=Principal.admin())
    assert first.body["outcome"] == "created"
    group_id = first.body["issue_id"]
    key = _lock_key(1, fingerprint_hashes(["dl"])[0])

    # PostgreSQL checks for a deadlock once, deadlock_timeout after a wait begins: the ingest
    # side's check must come after this test closes the cycle (which can take a few hundred ms on
    # a loaded machine), and long before the other side's 60 s check.
    url = make_url(settings.database_url).update_query_dict({"options": "-c deadlock_timeout=3s"})
    ingest_settings = settings.model_copy(
        update={"database_url": url.render_as_string(hide_password=False)}
    )
    from app.issue_types.service import reload_registry
    from app.main import build_context

    ingest_ctx = build_context(ingest_settings, clock)
    with ingest_ctx.db.read() as session:
        reload_registry(session, ingest_ctx.registry)
    other_engine = create_engine(settings.database_url, poolclass=NullPool)
    outcome: list[IngestResult | BaseException] = []

    def ingest() -> None:
        try:
            outcome.extend(
                ingest_occurrences(
                    ingest_ctx, [item(fingerprint="dl")], principal=Principal.admin()
                )
            )
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=ingest)
    try:
        with other_engine.connect() as other, other_engine.connect() as monitor:
            other.execute(text("SET deadlock_timeout = '60s'"))
            other_pid = other.execute(text("SELECT pg_backend_pid()")).scalar_one()
            other.execute(text("SELECT id FROM groups WHERE id = :g FOR UPDATE"), {"g": group_id})
            worker.start()

            def ingest_waits_for_the_row() -> bool:
                row = monitor.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND pid <> :pid AND query LIKE '%FOR UPDATE OF g%'"
                    ),
                    {"pid": other_pid},
                ).scalar_one()
                monitor.rollback()
                return bool(row)

            _wait_for(ingest_waits_for_the_row, "the ingest transaction to wait for the row lock")
            # Now close the cycle: the ingest side detects it first and is aborted.
            other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            other.commit()
        worker.join(timeout=30)
    finally:
        worker.join(timeout=30)
        ingest_ctx.db.dispose()
        other_engine.dispose()

    assert not worker.is_alive()
    [result] = outcome
    assert isinstance(result, IngestResult), result
    assert (result.status_code, result.body["outcome"]) == (202, "grouped")
    assert result.body["issue_id"] == group_id
    retries = [r.getMessage() for r in caplog.records if "ingest deadlock" in r.getMessage()]
    assert retries == ["ingest deadlock (attempt 1), retrying"]
    with ctx.db.read() as session:
        seen = session.execute(
            text("SELECT times_seen FROM groups WHERE id = :g"), {"g": group_id}
        ).scalar_one()
    assert seen == 2
