"""Concurrent writers: one issue per fingerprint, exact counts, duplicates counted once.

Two application contexts (two engines, as two processes would have) write to the same database
from many threads at once, on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from app.auth.principal import Principal
from app.config import Settings
from app.context import AppContext
from app.issue_types.service import reload_registry
from app.main import build_context
from app.models import Group, GroupHash, Occurrence
from app.occurrences.ingest import driver
from app.occurrences.ingest import statements as store
from app.occurrences.ingest.usecase import ingest_occurrences
from app.organizations.defaults import ensure_defaults
from tests.builders import md5, occurrence

THREADS = 8
PER_THREAD = 15


def _contexts(settings: Settings, n: int) -> list[AppContext]:
    contexts = [build_context(settings) for _ in range(n)]
    ensure_defaults(contexts[0].db)
    for ctx in contexts:
        with ctx.db.read() as session:
            reload_registry(session, ctx.registry)
    return contexts


def test_racing_writers_create_one_issue_and_count_exactly(settings: Settings) -> None:
    contexts = _contexts(settings, 2)
    shared_ids = [uuid.uuid4().hex for _ in range(10)]
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        ctx = contexts[n % 2]
        try:
            barrier.wait()
            for i in range(PER_THREAD):
                batch = [occurrence(fingerprint=["race", f"extra-{n}"])]
                batch.append(
                    occurrence(id=shared_ids[(n + i) % len(shared_ids)], fingerprint=["race"])
                )
                results = ingest_occurrences(ctx, batch, principal=Principal.admin())
                with lock:
                    outcomes.update(r.body.get("outcome", "error") for r in results)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with contexts[0].db.read() as session:
        groups = session.scalars(select(Group)).all()
        stored = session.scalar(select(func.count()).select_from(Occurrence))
    assert len(groups) == 1
    unique = THREADS * PER_THREAD + len(shared_ids)
    assert stored == unique
    assert groups[0].times_seen == unique
    assert outcomes["created"] == 1
    assert outcomes["created"] + outcomes["grouped"] == unique
    assert outcomes["duplicate"] == THREADS * PER_THREAD - len(shared_ids)
    for ctx in contexts:
        ctx.db.dispose()


def test_same_id_sent_twice_at_the_same_instant_counts_once(settings: Settings) -> None:
    contexts = _contexts(settings, 2)
    for round_no in range(10):
        payload = occurrence(fingerprint=[f"twin-{round_no}"])
        barrier = threading.Barrier(2)
        answers: list[str] = []

        def send(
            ctx: AppContext,
            payload: dict[str, object] = payload,
            barrier: threading.Barrier = barrier,
            answers: list[str] = answers,
        ) -> None:
            barrier.wait()
            [result] = ingest_occurrences(ctx, [payload], principal=Principal.admin())
            answers.append(result.body["outcome"])

        threads = [threading.Thread(target=send, args=(c,)) for c in contexts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers) == ["created", "duplicate"]
    with contexts[0].db.read() as session:
        assert session.scalar(select(func.sum(Group.times_seen))) == 10
    for ctx in contexts:
        ctx.db.dispose()


def test_racing_writers_open_one_issue_exactly_at_the_noise_threshold(settings: Settings) -> None:
    # performance_n_plus_one_db_queries: ignore_limit 3 within 24 hours.
    contexts = _contexts(settings, 2)
    barrier = threading.Barrier(THREADS)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                payload = occurrence(type=1006, fingerprint=["noisy"])
                [result] = ingest_occurrences(
                    contexts[n % 2], [payload], principal=Principal.admin()
                )
                with lock:
                    outcomes[result.body["outcome"]] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    total = THREADS * 3
    assert outcomes == Counter({"pending": 2, "created": 1, "grouped": total - 3})
    with contexts[0].db.read() as session:
        [group] = session.scalars(select(Group)).all()
        stored = session.scalar(select(func.count()).select_from(Occurrence))
    assert group.times_seen == total == stored
    for ctx in contexts:
        ctx.db.dispose()


def test_a_race_lost_in_a_driver_level_insert_is_retried(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate check misses a row another writer just committed: the unique key refuses
    the raw insert, the error reaches the retry as SQLAlchemy's IntegrityError, and the retry
    answers ``duplicate`` (not a 500, not a second row)."""
    [ctx] = _contexts(settings, 1)
    payload = occurrence()
    [first] = ingest_occurrences(ctx, [payload], principal=Principal.admin())
    assert first.body["outcome"] == "created"

    real = store.existing_occurrences
    blind = [True]

    def misses_once(*args: Any) -> Any:
        if blind.pop() if blind else False:
            return []  # as if the other writer's commit came after our look-up
        return real(*args)

    monkeypatch.setattr(store, "existing_occurrences", misses_once)
    [again] = ingest_occurrences(ctx, [payload], principal=Principal.admin())
    assert again.body["outcome"] == "duplicate"
    assert again.body["issue_id"] == first.body["issue_id"]
    with ctx.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Occurrence)) == 1
        assert session.scalar(select(func.sum(Group.times_seen))) == 1


def test_racing_writers_link_a_new_element_to_one_issue(settings: Settings) -> None:
    """Writers joining different issues link the same new element at once: the unique key
    lets one link win, the others retry and leave it there (no error, no second link)."""
    contexts = _contexts(settings, 2)
    owners = []
    for k in range(4):
        [made] = ingest_occurrences(
            contexts[0], [occurrence(fingerprint=[f"k{k}"])], principal=Principal.admin()
        )
        owners.append(made.body["issue_id"])
    barrier = threading.Barrier(THREADS)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(PER_THREAD):
                payload = occurrence(fingerprint=[f"k{(n + i) % 4}", "shared"])
                [result] = ingest_occurrences(
                    contexts[n % 2], [payload], principal=Principal.admin()
                )
                with lock:
                    outcomes[result.body.get("outcome", "error")] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert outcomes == Counter({"grouped": THREADS * PER_THREAD})
    with contexts[0].db.read() as session:
        links = session.scalars(select(GroupHash).where(GroupHash.hash == md5("shared"))).all()
        total = session.scalar(select(func.sum(Group.times_seen)))
        issues = session.scalar(select(func.count()).select_from(Group))
    assert len(links) == 1 and links[0].group_id in owners
    assert issues == 4
    assert total == 4 + THREADS * PER_THREAD
    [lone] = ingest_occurrences(
        contexts[1], [occurrence(fingerprint=["shared"])], principal=Principal.admin()
    )
    assert (lone.body["outcome"], lone.body["issue_id"]) == ("grouped", links[0].group_id)
    for ctx in contexts:
        ctx.db.dispose()


def test_a_link_lost_to_another_writer_leaves_the_element_with_its_issue(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer linked "b" to its issue after our look-up: our link fails on the unique
    key, the batch is retried, the occurrence joins a's issue and "b" stays where it is."""
    [ctx] = _contexts(settings, 1)
    admin = Principal.admin()
    [a] = ingest_occurrences(ctx, [occurrence(fingerprint=["a"])], principal=admin)
    [b] = ingest_occurrences(ctx, [occurrence(fingerprint=["b"])], principal=admin)

    real = store.known_issues
    blind = [True]

    def misses_b_once(*args: Any) -> Any:
        rows = real(*args)
        if blind.pop() if blind else False:
            return [row for row in rows if row.hash != md5("b")]
        return rows

    monkeypatch.setattr(store, "known_issues", misses_b_once)
    [joined] = ingest_occurrences(ctx, [occurrence(fingerprint=["a", "b"])], principal=admin)
    assert (joined.body["outcome"], joined.body["issue_id"]) == ("grouped", a.body["issue_id"])
    assert not blind  # the look-up that missed "b" did run
    with ctx.db.read() as session:
        owner = session.scalars(select(GroupHash.group_id).where(GroupHash.hash == md5("b")))
        assert list(owner) == [b.body["issue_id"]]
        assert session.scalar(select(func.sum(Group.times_seen))) == 3


def test_driver_errors_become_sqlalchemy_errors() -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError

    with pytest.raises(IntegrityError), driver.driver_errors("INSERT"):
        raise sqlite3.IntegrityError("UNIQUE constraint failed: occurrences.id")
    with pytest.raises(OperationalError), driver.driver_errors("BEGIN"):
        raise sqlite3.OperationalError("database is locked")
    with pytest.raises(IntegrityError), driver.driver_errors("COPY"):
        raise psycopg.errors.UniqueViolation("duplicate key")
