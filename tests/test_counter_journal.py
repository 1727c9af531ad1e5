"""The counter journal (ADR 0011): counts of large groups wait in a journal row for a fold.

- Pure: merging entries (sums, first/last seen, the newest occurrence with ties to the later
  entry, hourly counts) and which issues may wait (``journaled``, ``safe_since``).
- Through the use case: a group of 100+ occurrences joining issues stores one journal row and
  leaves ``groups`` alone; any session folds it first, so reads are exact; the fold is what
  the direct writes would have done; a journal left by a crash is folded by the next process;
  an issue deleted meanwhile is skipped; issues near an age rule are written at once.
- Through the API: the answer after a large batch shows the exact counts.
- Racing writers and folds (two contexts, as two processes; SQLite and PostgreSQL) count
  exactly.
- The migration refuses to drop a journal that still holds counts.
- When ingest goes quiet, the writer (inline and thread) and the Kafka consumer fold the last
  journaled counts one interval later, with no read to trigger it.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.auth.principal import Principal
from app.config import Settings
from app.context import AppContext
from app.issue_types.service import reload_registry
from app.main import build_context
from app.migrations import downgrade, upgrade
from app.occurrences.ingest import journal
from app.occurrences.ingest import write as write_module
from app.occurrences.ingest.journal import JOURNAL_MIN_ROWS, merged, micros, safe_since
from app.occurrences.ingest.recent import RecentIssues
from app.occurrences.ingest.rules import Issue
from app.occurrences.ingest.statements import ProjectInfo
from app.occurrences.ingest.usecase import ingest_occurrences
from app.organizations.defaults import ensure_defaults
from tests.builders import md5, occurrence
from tests.conftest import ADMIN_TOKEN, ON_POSTGRES, FakeClock

T0 = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)


def us(moment: datetime) -> int:
    return micros(moment)


def _entry(gid: int, n: int, *, first: datetime | None = None, last: datetime | None = None,
           newest: tuple[str, datetime] | None = None, hours: list[tuple[int, int]] | None = None,
           when: datetime = T0) -> list[Any]:  # fmt: skip
    new = None if newest is None else [f"t-{newest[0]}", "s", "c", "info", newest[0], us(newest[1])]
    return [
        gid,
        n,
        n,
        us(when),
        None if first is None else us(first),
        None if last is None else us(last),
        new,
        hours or [],
    ]


def test_merge_sums_counts_and_keeps_extremes() -> None:
    rows = [
        (2, orjson.dumps([_entry(7, 3, last=T0 + timedelta(minutes=5), hours=[(10, 3)])]).decode()),
        (
            1,
            orjson.dumps(
                [
                    _entry(7, 2, first=T0 - timedelta(days=1), hours=[(9, 1), (10, 1)]),
                    _entry(8, 1, when=T0 + timedelta(hours=1)),
                ]
            ).decode(),
        ),
    ]
    out = merged(rows)
    added, bumps, when, first, last, newest, hours, _newest_when = out[7]
    assert (added, bumps) == (5, 5)
    assert first == us(T0 - timedelta(days=1))
    assert last == us(T0 + timedelta(minutes=5))
    assert newest is None
    assert hours == {9: 1, 10: 4}
    assert out[8][2] == us(T0 + timedelta(hours=1))


def test_merge_newest_goes_to_the_later_detection_and_on_a_tie_to_the_later_row() -> None:
    later = T0 + timedelta(seconds=1)
    rows = [
        (3, orjson.dumps([_entry(1, 1, newest=("c", T0))]).decode()),
        (1, orjson.dumps([_entry(1, 1, newest=("a", T0))]).decode()),
        (2, orjson.dumps([_entry(1, 1, newest=("b", T0))]).decode()),
    ]
    assert merged(rows)[1][5][4] == "c"  # rows are applied in id order, whatever the input order
    rows.append((0, orjson.dumps([_entry(1, 1, newest=("d", later))]).decode()))
    assert merged(rows)[1][5][4] == "d"


def _project(retention_days: int, resolve_age_hours: int) -> ProjectInfo:
    return ProjectInfo(1, 1, resolve_age_hours, False, retention_days)


def test_safe_since_keeps_an_hour_from_the_nearer_age_rule() -> None:
    now = T0
    assert safe_since(now, _project(90, 0)) == now - timedelta(days=90) + timedelta(hours=1)
    assert safe_since(now, _project(90, 24)) == now - timedelta(hours=24) + timedelta(hours=1)
    assert safe_since(now, _project(0, 0)) == datetime.min.replace(tzinfo=UTC)


def _issue(**changes: Any) -> Issue:
    issue = Issue(5, 5, 1, 1, "h", 0, 7, T0, T0, 50, False, T0)
    for name, value in changes.items():
        setattr(issue, name, value)
    return issue


def test_only_plain_counting_of_recently_seen_issues_waits() -> None:
    since = T0 - timedelta(hours=2)
    assert journal.journaled(_issue(added=3), since)
    assert not journal.journaled(_issue(added=3, new=True), since)
    assert not journal.journaled(_issue(added=3, status_changed=True), since)
    assert not journal.journaled(_issue(added=3, priority_changed=True), since)
    assert not journal.journaled(_issue(added=1, regressed_by=["x"]), since)
    assert not journal.journaled(_issue(added=1, ignored_times=[T0]), since)
    assert not journal.journaled(_issue(added=1), T0 + timedelta(seconds=1))


def test_an_issue_is_hot_from_its_first_touch_until_two_rotations_without_one() -> None:
    recent = RecentIssues()
    assert not recent.hot(1)
    recent.touch([1, 2])
    assert recent.hot(1) and recent.hot(2)
    recent.rotate()
    recent.touch([2])
    assert recent.hot(1) and recent.hot(2)
    recent.rotate()
    assert not recent.hot(1)  # not touched during the last two intervals
    assert recent.hot(2)


# --- through the use case -----------------------------------------------------------------


@pytest.fixture
def ctx(own_ctx: AppContext) -> AppContext:
    """A context of its own whose ingest never folds by itself (the interval is an hour)."""
    own_ctx.settings = own_ctx.settings.model_copy(update={"counter_fold_seconds": 3600})
    journal.state_of(own_ctx).fold_at = time.monotonic()
    return own_ctx


def _raw(settings: Settings, sql: str) -> list[Any]:
    """Rows read around the application (no session: nothing is folded)."""
    engine = create_engine(settings.resolved_database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def _count_records(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of entries of each journal row written from now on."""
    counts: list[int] = []
    real = write_module.record

    def counting(cur: Any, sql: Any, entries: list[list[Any]]) -> None:
        if entries:
            counts.append(len(entries))
        real(cur, sql, entries)

    monkeypatch.setattr(write_module, "record", counting)
    return counts


def _ingest(ctx: AppContext, items: list[dict[str, Any]]) -> list[str]:
    results = ingest_occurrences(ctx, items, principal=Principal.admin())
    return [str(r.body.get("outcome", r.body)) for r in results]


def _issues(ctx: AppContext, fingerprints: list[str], **fields: Any) -> None:
    """Open one issue per fingerprint with a small (written at once) group."""
    assert _ingest(ctx, [occurrence(fingerprint=[f], **fields) for f in fingerprints]) == [
        "created"
    ] * len(fingerprints)


def _execute(settings: Settings, sql: str, **params: Any) -> None:
    """One statement around the application (as an operator or another service would)."""
    engine = create_engine(settings.resolved_database_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def _db_time(moment: datetime) -> Any:
    """A time as the test database stores it."""
    return moment if ON_POSTGRES else moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def _seen(settings: Settings) -> list[tuple[str, int, int, str]]:
    """Title, times seen, version and latest occurrence of each issue, by id."""
    rows = _raw(
        settings, "SELECT title, times_seen, version, latest_occurrence_id FROM groups ORDER BY id"
    )
    return [(title, int(n), int(v), str(latest)) for title, n, v, latest in rows]


def _wait_for_empty_journal(settings: Settings, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while _raw(settings, "SELECT id FROM counter_journal") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _raw(settings, "SELECT id FROM counter_journal")


def test_a_large_group_journals_its_counts_and_a_session_folds_them(
    ctx: AppContext, settings: Settings
) -> None:
    _issues(ctx, ["a", "b"], issue_title="first")
    assert not _raw(settings, "SELECT id FROM counter_journal")
    items = [
        occurrence(fingerprint=["a" if i % 3 else "b"], issue_title=f"t{i}",
                   detection_time=(T0 + timedelta(minutes=i)).isoformat())
        for i in range(JOURNAL_MIN_ROWS + 20)
    ]  # fmt: skip
    assert set(_ingest(ctx, items)) == {"grouped"}
    assert len(_raw(settings, "SELECT id FROM counter_journal")) == 1
    assert [n for _, n, _, _ in _seen(settings)] == [1, 1]  # not written yet

    with ctx.db.read():
        pass  # any session folds first
    assert not _raw(settings, "SELECT id FROM counter_journal")
    a = [i for i in range(len(items)) if i % 3]
    b = [i for i in range(len(items)) if not i % 3]
    assert _seen(settings) == [
        (f"t{a[-1]}", 1 + len(a), 1 + len(a), items[a[-1]]["id"]),
        (f"t{b[-1]}", 1 + len(b), 1 + len(b), items[b[-1]]["id"]),
    ]
    last = _raw(settings, "SELECT max(last_seen) FROM groups")[0][0]
    assert str(last).startswith(str((T0 + timedelta(minutes=len(items) - 1)).date()))
    hourly = _raw(settings, "SELECT sum(count) FROM hourly_counts")[0][0]
    assert int(hourly) == 2 + len(items)


def test_a_fold_writes_what_the_direct_writes_would_have(
    ctx: AppContext, settings: Settings
) -> None:
    # The same occurrences (texts and detection times out of order) go to two pairs of issues:
    # in groups of 50 (written at once) and in one group (journaled, then folded).
    _issues(ctx, ["d1", "d2", "j1", "j2"], issue_title="t0")

    def items(pair: tuple[str, str]) -> list[dict[str, Any]]:
        return [
            occurrence(fingerprint=[pair[i % 2]], issue_title=f"t{i % 7}",
                       detection_time=(T0 + timedelta(minutes=(i * 37) % 300 - 60)).isoformat())
            for i in range(JOURNAL_MIN_ROWS + 10)
        ]  # fmt: skip

    direct = items(("d1", "d2"))
    for start in range(0, len(direct), 50):
        _ingest(ctx, direct[start : start + 50])
    assert not _raw(settings, "SELECT id FROM counter_journal")
    _ingest(ctx, items(("j1", "j2")))
    assert _raw(settings, "SELECT id FROM counter_journal")
    journal.fold(ctx)

    def state(fingerprint: str) -> tuple[Any, ...]:
        [row] = _raw(
            settings,
            "SELECT times_seen, version, first_seen, last_seen, title, subtitle, culprit, level, "
            f"latest_detection_time FROM groups WHERE hash = '{md5(fingerprint)}'",  # noqa: S608
        )
        return tuple(row)

    assert state("j1") == state("d1")
    assert state("j2") == state("d2")
    hours = "SELECT h.hour, h.count FROM hourly_counts h JOIN groups g ON g.id = h.group_id "
    for d, j in (("d1", "j1"), ("d2", "j2")):
        assert _raw(settings, f"{hours} WHERE g.hash = '{md5(j)}' ORDER BY 1") == _raw(
            settings, f"{hours} WHERE g.hash = '{md5(d)}' ORDER BY 1"
        )


def test_a_journal_left_by_a_crash_is_folded_by_the_next_process(
    ctx: AppContext, settings: Settings, clock: FakeClock
) -> None:
    _issues(ctx, ["crash"])
    _ingest(ctx, [occurrence(fingerprint=["crash"]) for _ in range(JOURNAL_MIN_ROWS)])
    ctx.db.dispose()  # gone without a fold
    assert len(_raw(settings, "SELECT id FROM counter_journal")) == 1

    later = build_context(settings, clock)
    try:
        with later.db.read():
            pass
    finally:
        later.db.dispose()
    assert _raw(settings, "SELECT times_seen FROM groups")[0][0] == 1 + JOURNAL_MIN_ROWS


def test_the_answer_after_a_large_batch_shows_exact_counts(
    admin: TestClient, settings: Settings
) -> None:
    first = admin.post("/occurrences", json=occurrence(fingerprint=["api"]))
    assert first.status_code == 202, first.text
    batch = [occurrence(fingerprint=["api"]) for _ in range(JOURNAL_MIN_ROWS + 5)]
    answer = admin.post("/occurrences/batch", json={"occurrences": batch})
    assert answer.status_code == 200
    assert {r["outcome"] for r in answer.json()["results"]} == {"grouped"}
    assert _raw(settings, "SELECT id FROM counter_journal")  # the counts are waiting
    issue_id = first.json()["issue_id"]
    shown = admin.get(f"/issues/{issue_id}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["times_seen"] == JOURNAL_MIN_ROWS + 6


def test_an_issue_this_process_did_not_count_into_lately_is_written_at_once(
    ctx: AppContext, settings: Settings, clock: FakeClock
) -> None:
    _issues(ctx, ["cold"])
    other = build_context(settings.model_copy(update={"counter_fold_seconds": 3600}), clock)
    try:
        with other.db.read() as session:
            reload_registry(session, other.registry)
        # First touch by this process: written at once (a fold would cost more than it saves).
        _ingest(other, [occurrence(fingerprint=["cold"]) for _ in range(JOURNAL_MIN_ROWS)])
        assert not _raw(settings, "SELECT id FROM counter_journal")
        # Touched lately: the next large group waits in the journal.
        _ingest(other, [occurrence(fingerprint=["cold"]) for _ in range(JOURNAL_MIN_ROWS)])
        assert len(_raw(settings, "SELECT id FROM counter_journal")) == 1
    finally:
        other.db.dispose()


def test_a_direct_write_after_journaled_counts_keeps_the_newest_of_a_tie(
    ctx: AppContext, settings: Settings, clock: FakeClock
) -> None:
    _issues(ctx, ["tie"])
    moment = (T0 + timedelta(minutes=5)).isoformat()
    big = [occurrence(fingerprint=["tie"], issue_title="journaled", detection_time=moment)]
    _ingest(ctx, big * 1 + [occurrence(fingerprint=["tie"], detection_time=moment,
                                       issue_title="journaled") for _ in range(99)])  # fmt: skip
    assert _raw(settings, "SELECT id FROM counter_journal")
    clock.advance(seconds=1)
    # A small group a second later, same detection time: written at once, and the later wins.
    _ingest(ctx, [occurrence(fingerprint=["tie"], issue_title="direct", detection_time=moment)])
    journal.fold(ctx)
    assert _raw(settings, "SELECT title, times_seen FROM groups") == [("direct", 102)]


def test_updated_at_does_not_move_back_at_a_fold(
    ctx: AppContext, settings: Settings, clock: FakeClock, admin: TestClient
) -> None:
    _issues(ctx, ["late"])
    _ingest(ctx, [occurrence(fingerprint=["late"]) for _ in range(JOURNAL_MIN_ROWS)])
    clock.advance(hours=1)
    # A triage an hour later: the row is written after the entries.
    _execute(settings, "UPDATE groups SET updated_at = :t", t=_db_time(clock.now))
    journal.fold(ctx)
    [(updated,)] = _raw(settings, "SELECT updated_at FROM groups")
    assert str(updated).startswith(clock.now.strftime("%Y-%m-%d %H"))


def test_ingest_after_a_quiet_spell_folds_before_it_decides(
    ctx: AppContext, settings: Settings, clock: FakeClock
) -> None:
    # Auto-resolve after 24 hours. The issue was last seen 20 hours ago as stored; a large group
    # brings it to now, journaled. Five hours later, with nothing folded meanwhile, one more
    # occurrence must join it (last seen 5 hours ago), not regress it (25 hours, as stored).
    _execute(settings, "UPDATE projects SET resolve_age_hours = 24")
    _issues(ctx, ["quiet"], detection_time=(clock.now - timedelta(hours=20)).isoformat())
    now = clock.now.isoformat()
    _ingest(ctx, [occurrence(fingerprint=["quiet"], detection_time=now) for _ in range(100)])
    assert _raw(settings, "SELECT id FROM counter_journal")
    clock.advance(hours=5)
    journal.state_of(ctx).checked_at = 0.0  # the quiet spell, as the process's clock sees it
    later = clock.now.isoformat()
    assert _ingest(ctx, [occurrence(fingerprint=["quiet"], detection_time=later)]) == ["grouped"]


def test_an_issue_deleted_before_the_fold_is_skipped(ctx: AppContext, settings: Settings) -> None:
    _issues(ctx, ["gone", "kept"])
    items = [occurrence(fingerprint=["gone" if i % 2 else "kept"]) for i in range(120)]
    _ingest(ctx, items)
    engine = create_engine(settings.resolved_database_url, poolclass=NullPool)
    with engine.begin() as conn:
        if not ON_POSTGRES:
            conn.execute(text("PRAGMA foreign_keys=ON"))
        gone = conn.execute(
            text("SELECT g.id FROM groups g JOIN group_hashes h ON h.group_id = g.id "
                 "ORDER BY g.id DESC LIMIT 1")
        ).scalar()  # fmt: skip
        conn.execute(text("DELETE FROM groups WHERE id = :g"), {"g": gone})
    engine.dispose()
    assert journal.fold(ctx) == 1
    rows = _raw(settings, "SELECT times_seen FROM groups")
    assert [int(n) for (n,) in rows] == [61]
    assert not _raw(settings, "SELECT id FROM counter_journal")


def test_an_issue_near_an_age_rule_is_written_at_once(
    ctx: AppContext, settings: Settings, clock: FakeClock
) -> None:
    # Auto-resolve after 24 hours: an issue last seen 23.5 hours ago is within the safety
    # margin, so the group that brings it back writes its counts directly.
    _execute(settings, "UPDATE projects SET resolve_age_hours = 24")
    old = (clock.now - timedelta(hours=23, minutes=30)).isoformat()
    _issues(ctx, ["old"], detection_time=old)
    _ingest(ctx, [occurrence(fingerprint=["old"]) for _ in range(JOURNAL_MIN_ROWS)])
    assert not _raw(settings, "SELECT id FROM counter_journal")
    assert _raw(settings, "SELECT times_seen FROM groups")[0][0] == 1 + JOURNAL_MIN_ROWS
    # Now recently seen: the next large group waits in the journal.
    _ingest(ctx, [occurrence(fingerprint=["old"]) for _ in range(JOURNAL_MIN_ROWS)])
    assert len(_raw(settings, "SELECT id FROM counter_journal")) == 1


def test_racing_writers_and_folds_count_exactly(
    settings: Settings, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two contexts (two processes), each folding after every group, ingest large groups into
    # the same issues from several threads.
    folding = settings.model_copy(update={"counter_fold_seconds": 0})
    # A fixed clock: the occurrences' detection time stays recent (else not journaled).
    contexts = [build_context(folding, FakeClock()) for _ in range(2)]
    recorded = _count_records(monkeypatch)
    ensure_defaults(contexts[0].db)
    for context in contexts:
        with context.db.read() as session:
            reload_registry(session, context.registry)
    fingerprints = [f"race-{k}" for k in range(5)]
    _issues(contexts[0], fingerprints)
    errors: list[BaseException] = []
    rounds, per_group = 3, JOURNAL_MIN_ROWS + 10

    def worker(n: int) -> None:
        try:
            for r in range(rounds):
                items = [
                    occurrence(fingerprint=[fingerprints[(i + r + n) % 5]], id=uuid.uuid4().hex)
                    for i in range(per_group)
                ]
                outcomes = _ingest(contexts[n % 2], items)
                assert set(outcomes) == {"grouped"}, outcomes
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with contexts[1].db.read():
        pass
    for context in contexts:
        context.db.dispose()
    total = 5 + 4 * rounds * per_group
    assert int(_raw(settings, "SELECT sum(times_seen) FROM groups")[0][0]) == total
    assert int(_raw(settings, "SELECT count(*) FROM occurrences")[0][0]) == total
    assert int(_raw(settings, "SELECT sum(count) FROM hourly_counts")[0][0]) == total
    assert not _raw(settings, "SELECT id FROM counter_journal")
    assert sum(recorded) > 0  # the groups went through the journal


@pytest.mark.skipif(ON_POSTGRES, reason="a migration test on a SQLite file of its own")
def test_the_migration_will_not_drop_a_journal_holding_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    upgrade(url)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO counter_journal (entries) VALUES ('[]')"))
    with pytest.raises(RuntimeError, match="unfolded"):
        downgrade(url, "0004")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM counter_journal"))
    engine.dispose()
    downgrade(url, "0004")


@pytest.mark.parametrize("writer", ["inline", "thread"])
def test_the_writer_folds_after_a_group_when_due(
    settings: Settings, clock: FakeClock, writer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.main import create_app

    app = create_app(
        settings.model_copy(update={"counter_fold_seconds": 0, "ingest_writer": writer}),
        clock=clock,
    )
    recorded = _count_records(monkeypatch)
    folds: list[int] = []
    real_fold = journal.fold

    def counting_fold(ctx: AppContext, **kwargs: Any) -> int:
        folds.append(1)
        return real_fold(ctx, **kwargs)

    with TestClient(app) as client:
        monkeypatch.setattr(journal, "fold", counting_fold)  # after the start-up fold
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        assert client.post("/occurrences", json=occurrence(fingerprint=["w"])).status_code == 202
        batch = [occurrence(fingerprint=["w"]) for _ in range(JOURNAL_MIN_ROWS)]
        assert client.post("/occurrences/batch", json={"occurrences": batch}).status_code == 200
        # No session reads in between: the writer's own fold, after the answer went out.
        _wait_for_empty_journal(settings)
        assert _raw(settings, "SELECT times_seen FROM groups")[0][0] == 1 + JOURNAL_MIN_ROWS
        time.sleep(0.3)  # the idle check after the batch finds its row folded: no second fold
        assert len(folds) == 2  # one after each group (the interval is 0)
    assert recorded == [1]  # the batch's counts went through the journal


def test_idle_wait_runs_from_the_last_journal_row_until_a_fold_takes_it(
    ctx: AppContext,
) -> None:
    ctx.settings = ctx.settings.model_copy(update={"counter_fold_seconds": 5})
    state = journal.state_of(ctx)
    assert journal.idle_wait(ctx) is None  # nothing journaled by this process
    state.fold_at = time.monotonic() - 10
    journal.committed_journal(ctx)
    wait = journal.idle_wait(ctx)
    assert wait is not None and 4 < wait <= 5
    journal.fold_if_idle(ctx)  # not due: nothing happens
    later = journal.idle_wait(ctx)
    assert later is not None and 0 < later <= wait
    state.journaled_at -= 6  # the row has waited an interval
    assert journal.idle_wait(ctx) == 0.0
    journal.fold_if_idle(ctx)
    assert state.fold_at > state.journaled_at
    assert journal.idle_wait(ctx) is None  # the fold took it


def _journal_a_large_group(ctx: AppContext, settings: Settings, fingerprint: str) -> None:
    """One issue, then a group of JOURNAL_MIN_ROWS that journals its counts (nothing folds)."""
    _issues(ctx, [fingerprint])
    items = [occurrence(fingerprint=[fingerprint]) for _ in range(JOURNAL_MIN_ROWS)]
    assert set(_ingest(ctx, items)) == {"grouped"}
    assert len(_raw(settings, "SELECT id FROM counter_journal")) == 1


@pytest.mark.parametrize("route", ["/occurrences/batch", "/ingest"])
@pytest.mark.parametrize("writer", ["inline", "thread"])
def test_the_writer_folds_a_bursts_last_counts_one_interval_later(
    settings: Settings,
    clock: FakeClock,
    writer: str,
    route: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # /ingest ingests on a worker thread, not through the writer; it hands the writer the watch.
    from app.main import create_app

    interval = 1.0
    app = create_app(
        settings.model_copy(update={"counter_fold_seconds": interval, "ingest_writer": writer}),
        clock=clock,
    )
    recorded = _count_records(monkeypatch)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        assert client.post("/occurrences", json=occurrence(fingerprint=["q"])).status_code == 202
        # As if the process had just folded: the fold after the batch's group is not due.
        journal.state_of(app.state.ctx).fold_at = time.monotonic()
        batch = [occurrence(fingerprint=["q"]) for _ in range(JOURNAL_MIN_ROWS)]
        body = {"occurrences": batch} if route == "/occurrences/batch" else batch
        assert client.post(route, json=body).status_code == 200
        started = time.monotonic()
        assert recorded == [1]  # journaled, and no more requests, reads or jobs follow
        _wait_for_empty_journal(settings)
        assert time.monotonic() - started < interval + 5
        assert _raw(settings, "SELECT times_seen FROM groups")[0][0] == 1 + JOURNAL_MIN_ROWS


def test_the_consumer_folds_the_last_counts_after_an_empty_poll(
    ctx: AppContext, settings: Settings
) -> None:
    from app.consumer.runner import ConsumerConfig, IngestConsumer
    from tests.test_consumer_batches import FakeConsumer, FakeProducer

    _journal_a_large_group(ctx, settings, "kafka")
    ctx.settings = ctx.settings.model_copy(update={"counter_fold_seconds": 0.05})
    time.sleep(0.1)
    stop = threading.Event()
    runner = IngestConsumer(
        ctx,
        ConsumerConfig(bootstrap_servers="unused:9092"),
        consumer=FakeConsumer([], stop),  # one empty poll, then stop
        dlq_producer=FakeProducer(),
    )
    runner.run(stop)
    assert not _raw(settings, "SELECT id FROM counter_journal")
    assert _raw(settings, "SELECT times_seen FROM groups")[0][0] == 1 + JOURNAL_MIN_ROWS


def test_only_a_threads_outermost_session_folds(ctx: AppContext) -> None:
    # A session opened inside another must not fold: on PostgreSQL the fold would wait for the
    # row locks of the thread's own open transaction, forever.
    calls: list[int] = []
    ctx.db.before_session = lambda: calls.append(1)
    with ctx.db.write():
        assert calls == [1]
        with ctx.db.read():
            pass
        with ctx.db.write():
            pass
    assert calls == [1]
    with ctx.db.read():
        pass
    assert calls == [1, 1]
