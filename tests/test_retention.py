"""Retention (SPEC-free summary in docs/operations.md#retention): every rule of a cleanup pass.

Times come from the app's FakeClock: occurrences are sent with detection times relative to it,
then the clock moves past the retention and a pass runs.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import Settings
from app.context import AppContext
from app.lifecycle.forecast import epoch_hour
from app.models import (
    Activity,
    Event,
    Group,
    GroupHash,
    HourlyCount,
    Occurrence,
    PendingWindow,
    StatusChangeRecord,
    Webhook,
    WebhookDelivery,
)
from app.occurrences.noise import Window, admit, window_closed
from app.retention.rules import BatchSizer, cutoffs
from app.retention.service import PassResult, run_pass
from tests.builders import ctx_of, make_group, md5, occurrence, set_hourly_counts
from tests.conftest import ON_POSTGRES, FakeClock, assert_error

DAY = timedelta(days=1)
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
NOISY_TYPE = 1006  # built-in with a noise window: 3 occurrences within 24 hours


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def send(admin: TestClient, **overrides: Any) -> dict[str, Any]:
    response = admin.post("/occurrences", json=occurrence(**overrides))
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def set_retention(admin: TestClient, days: int, project_id: int = 1) -> None:
    response = admin.patch(f"/admin/projects/{project_id}", json={"retention_days": days})
    assert response.status_code == 200, response.text
    assert response.json()["retention_days"] == days


def count(ctx: AppContext, model: Any, *where: Any) -> int:
    with ctx.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# -- the pure rules ----------------------------------------------------------------------


def test_cutoffs_keep_hourly_counts_for_the_forecast_when_retention_is_shorter() -> None:
    now = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    short = cutoffs(now, 2)
    assert short.retention == now - 2 * DAY
    assert short.hourly_hour == epoch_hour(now) - 8 * 24
    long = cutoffs(now, 30)
    assert long.retention == now - 30 * DAY
    assert long.hourly_hour == epoch_hour(now) - 30 * 24
    with pytest.raises(ValueError, match="at least 1"):
        cutoffs(now, 0)


def test_window_is_closed_at_its_end() -> None:
    assert window_closed(T0, T0)
    assert not window_closed(T0 + timedelta(seconds=1), T0)
    # Ingest restarts a window exactly when retention may delete it: one rule for both.
    window = Window(2, T0 - timedelta(minutes=1), T0)
    assert admit(window, T0, ignore_limit=9, expiry=timedelta(minutes=1)).restarted
    early = T0 - timedelta(microseconds=1)
    assert not admit(window, early, ignore_limit=9, expiry=timedelta(minutes=1)).restarted
    # The same function gives the retention pass its SQL condition.
    condition = window_closed(PendingWindow.window_ends_at, T0)
    assert str(condition) == "pending_windows.window_ends_at <= :window_ends_at_1"


def test_batch_size_shrinks_when_slow_and_grows_back_when_quick() -> None:
    sizer = BatchSizer(minimum=10, maximum=2000, target_seconds=0.05)
    assert sizer.next(2000, 0.2) == 500
    assert sizer.next(2000, 0.07) == 1000  # at least halving
    assert sizer.next(20, 5.0) == 10
    assert sizer.next(1000, 0.01) == 1500
    assert sizer.next(1800, 0.001) == 2000
    assert sizer.next(1000, 0.04) == 1000


# -- admin API ----------------------------------------------------------------------------


def test_project_retention_days_default_create_patch_and_bounds(admin: TestClient) -> None:
    assert admin.get("/admin/projects/1").json()["retention_days"] == 90
    body = {"organization_id": 1, "slug": "short", "name": "Short", "retention_days": 7}
    created = admin.post("/admin/projects", json=body)
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    assert admin.get(f"/admin/projects/{project_id}").json()["retention_days"] == 7
    set_retention(admin, 3650, project_id)
    for bad in (0, 3651, -1, "ten", None):
        response = admin.patch(f"/admin/projects/{project_id}", json={"retention_days": bad})
        error = assert_error(response, 422, "invalid_payload")
        assert error["details"][0]["field"] == "retention_days"
    body = {"organization_id": 1, "slug": "bad", "name": "Bad", "retention_days": 0}
    assert_error(admin.post("/admin/projects", json=body), 422, "invalid_payload")


def test_new_projects_take_the_configured_default(
    settings: Settings, clock: FakeClock, admin: TestClient
) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"default_retention_days": 30}), clock=clock)
    with TestClient(app, headers=dict(admin.headers)) as other:
        body = {"organization_id": 1, "slug": "dflt", "name": "Default retention"}
        response = other.post("/admin/projects", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["retention_days"] == 30


# -- occurrences, events, issues -----------------------------------------------------------


def test_expired_occurrence_is_deleted_and_its_id_processed_anew(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    set_retention(admin, 10)
    old = occurrence(fingerprint=["keep"], detection_time=iso(T0 - DAY))
    first = admin.post("/occurrences", json=old).json()
    assert first["outcome"] == "created"
    issue_id = first["issue_id"]
    clock.advance(days=9)
    assert send(admin, fingerprint=["keep"], detection_time=iso(clock.now))["outcome"] == "grouped"
    assert admin.post("/occurrences", json=old).json()["outcome"] == "duplicate"

    clock.advance(days=1, hours=1)  # the first occurrence is now 11 days old, the issue 1 day
    result = run_pass(ctx_of(app))
    assert result.deleted["occurrences"] == 1
    assert result.deleted["events"] == 1
    assert result.deleted["groups"] == 0
    assert count(ctx, Occurrence, Occurrence.id == old["id"]) == 0
    assert count(ctx, Event, Event.event_id == old["event"]["event_id"]) == 0

    issue = admin.get(f"/issues/{issue_id}").json()
    assert issue["times_seen"] == 2  # lifetime count
    assert issue["first_seen"].startswith(iso(T0 - DAY)[:19])
    listed = admin.get(f"/issues/{issue_id}/occurrences").json()["data"]
    assert len(listed) == 1  # what is left

    again = admin.post("/occurrences", json=old).json()
    assert again["outcome"] == "grouped", again
    assert again["issue_id"] == issue_id
    assert admin.get(f"/issues/{issue_id}").json()["times_seen"] == 3


def test_expired_issue_goes_with_its_rows_and_its_fingerprint_opens_a_new_issue(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    set_retention(admin, 5)
    answer = send(admin, fingerprint=["gone", "gone-2"], detection_time=iso(T0 - 2 * DAY))
    issue_id = answer["issue_id"]
    status = admin.post(
        "/status-changes",
        json={"fingerprint": ["gone"], "project_id": 1, "new_status": "resolved"},
    )
    assert status.status_code in (200, 201, 202), status.text
    survivor = send(admin, fingerprint=["stays"], detection_time=iso(T0))["issue_id"]
    assert count(ctx, Activity, Activity.group_id == issue_id) >= 1
    assert count(ctx, HourlyCount, HourlyCount.group_id == issue_id) == 1

    clock.advance(days=4)  # the first issue was last seen 6 days ago, the second 4
    result = run_pass(ctx)
    assert result.deleted["groups"] == 1
    assert result.deleted["group_hashes"] == 2
    assert result.deleted["activities"] >= 1
    assert result.deleted["hourly_counts"] == 1
    assert admin.get(f"/issues/{issue_id}").status_code == 404
    for model in (Activity, HourlyCount, GroupHash, Occurrence):
        assert count(ctx, model, model.group_id == issue_id) == 0
    assert admin.get(f"/issues/{survivor}").status_code == 200

    fresh = send(admin, fingerprint=["gone-2"], detection_time=iso(clock.now))
    assert fresh["outcome"] == "created"
    assert fresh["issue_id"] != issue_id
    assert admin.get(f"/issues/{fresh['issue_id']}").json()["times_seen"] == 1


def test_event_still_used_by_a_surviving_occurrence_is_kept(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    set_retention(admin, 10)
    shared = occurrence(fingerprint=["ev"], detection_time=iso(T0 - 5 * DAY))
    event_id = shared["event"]["event_id"]
    assert admin.post("/occurrences", json=shared).json()["outcome"] == "created"
    referring = occurrence(fingerprint=["ev"], detection_time=iso(T0 + 5 * DAY))
    referring.pop("event")
    referring["event_id"] = event_id
    answer = admin.post("/occurrences", json=referring)
    assert answer.status_code == 202, answer.text
    alone = occurrence(fingerprint=["ev"], detection_time=iso(T0 - 5 * DAY))

    assert admin.post("/occurrences", json=alone).json()["outcome"] == "grouped"
    clock.advance(days=6)
    result = run_pass(ctx)
    assert result.deleted["occurrences"] == 2
    assert result.deleted["events"] == 1  # only the unshared one
    assert count(ctx, Event, Event.event_id == event_id) == 1
    assert count(ctx, Event, Event.event_id == alone["event"]["event_id"]) == 0


def test_hourly_counts_are_kept_eight_days_even_with_a_shorter_retention(
    app: FastAPI, admin: TestClient, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    set_retention(admin, 2)
    # Seen now (survives), first seen before its oldest count.
    group = make_group(ctx, first_seen=clock.now - 10 * DAY)
    now_hour = epoch_hour(clock.now)
    hours = {now_hour - 24 * d: d + 1 for d in (1, 3, 7)}
    hours[now_hour - 8 * 24] = 100  # exactly 8 days: the hour straddling the cutoff stays
    hours[now_hour - 8 * 24 - 1] = 50
    hours[now_hour - 9 * 24] = 60
    set_hourly_counts(ctx, group.id, hours)
    result = run_pass(ctx)
    assert result.deleted["hourly_counts"] == 2
    with ctx.db.read() as session:
        kept = set(
            session.scalars(select(HourlyCount.hour).where(HourlyCount.group_id == group.id))
        )
    assert kept == {now_hour - 24, now_hour - 72, now_hour - 168, now_hour - 192}


def test_hourly_counts_follow_a_retention_longer_than_eight_days(
    app: FastAPI, admin: TestClient, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    set_retention(admin, 10)
    group = make_group(ctx, first_seen=clock.now - 12 * DAY)
    make_group(ctx, first_seen=clock.now - 2 * DAY)  # no old counts: not visited for them
    now_hour = epoch_hour(clock.now)
    set_hourly_counts(ctx, group.id, {now_hour - 9 * 24: 1, now_hour - 11 * 24: 1})
    assert run_pass(ctx).deleted["hourly_counts"] == 1
    assert count(ctx, HourlyCount, HourlyCount.hour == now_hour - 9 * 24) == 1


def test_long_lived_issue_hourly_counts_go_in_batches_of_bounded_rows(
    app: FastAPI, admin: TestClient, clock: FakeClock, settings: Settings
) -> None:
    """An issue seen all along has hundreds of expired hours: no batch deletes them all."""
    ctx = ctx_of(app)
    set_retention(admin, 10)
    now_hour = epoch_hour(clock.now)
    cutoff = cutoffs(clock.now, 10).hourly_hour
    old = make_group(ctx, first_seen=clock.now - 40 * DAY)
    other = make_group(ctx, first_seen=clock.now - 39 * DAY)
    set_hourly_counts(ctx, old.id, dict.fromkeys(range(now_hour - 40 * 24, now_hour - 24), 1))
    set_hourly_counts(ctx, other.id, {now_hour - 39 * 24: 3, now_hour - 2: 4})
    expired = cutoff - (now_hour - 40 * 24) + 1
    ctx.settings = settings.model_copy(
        update={"retention_batch_size": 10, "retention_pause_seconds": 0}
    )
    result = run_pass(ctx)
    assert result.deleted["hourly_counts"] == expired
    # Batches of 10 rows' worth (an issue counts as 20): at most 20 hourly counts each.
    assert result.steps["hourly_counts"].batches >= expired // 20
    assert result.summary()["steps"]["hourly_counts"]["batches"] == (
        result.steps["hourly_counts"].batches
    )
    assert count(ctx, HourlyCount, HourlyCount.group_id == old.id) == (now_hour - 24) - (cutoff)
    assert count(ctx, HourlyCount, HourlyCount.group_id == other.id) == 1
    assert count(ctx, HourlyCount, HourlyCount.hour < cutoff) == 0


# -- pending occurrences ---------------------------------------------------------------


def test_pending_occurrences_of_a_closed_window_go_and_their_id_is_processed_anew(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    pending = occurrence(type=NOISY_TYPE, fingerprint=["noise"], detection_time=iso(T0))
    assert admin.post("/occurrences", json=pending).json()["outcome"] == "pending"
    clock.advance(hours=12)
    assert run_pass(ctx).deleted["occurrences"] == 0  # window still open
    assert admin.post("/occurrences", json=pending).json()["outcome"] == "duplicate"

    clock.advance(hours=12)  # the 24-hour window has ended
    result = run_pass(ctx)
    assert result.deleted["pending_windows"] == 1
    assert result.deleted["occurrences"] == 1
    assert result.deleted["events"] == 1
    assert count(ctx, PendingWindow) == 0
    again = admin.post("/occurrences", json=pending).json()
    assert again["outcome"] == "pending", again
    assert again["noise"]["count"] == 1


def test_pending_occurrences_discarded_by_a_restarted_window_go(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    first = occurrence(type=NOISY_TYPE, fingerprint=["restart"], detection_time=iso(T0))
    assert admin.post("/occurrences", json=first).json()["outcome"] == "pending"
    clock.advance(days=1, hours=1)
    later = occurrence(type=NOISY_TYPE, fingerprint=["restart"], detection_time=iso(clock.now))
    answer = admin.post("/occurrences", json=later).json()
    assert answer["outcome"] == "pending"
    assert answer["noise"]["count"] == 1  # a new window: the first one is discarded
    result = run_pass(ctx)
    assert result.deleted["occurrences"] == 1
    assert result.deleted["pending_windows"] == 0
    assert count(ctx, Occurrence, Occurrence.id == first["id"]) == 0
    assert count(ctx, Occurrence, Occurrence.id == later["id"]) == 1


# -- logs and ids ------------------------------------------------------------------------


def test_delivery_log_and_status_change_ids_older_than_the_retention_go(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    set_retention(admin, 3)
    with ctx.db.write() as session:
        hook = Webhook(project_id=1, url="https://example.com/h", secret="s" * 32, events=["*"])
        session.add(hook)
        session.flush()
        for n, (age, state) in enumerate(
            [(4, "delivered"), (4, "failed"), (4, "pending"), (2, "delivered")]
        ):
            session.add(
                WebhookDelivery(
                    id=f"d{n:031d}",
                    webhook_id=hook.id,
                    event="issue.created",
                    body="{}",
                    state=state,
                    created_at=clock.now - age * DAY,
                    next_attempt_at=clock.now + DAY,
                )
            )
        for n, age in enumerate((4, 4, 1)):
            session.add(
                StatusChangeRecord(
                    project_id=1, id=f"sc-{n}", response={}, created_at=clock.now - age * DAY
                )
            )
        session.commit()
    result = run_pass(ctx)
    assert result.deleted["webhook_deliveries"] == 2  # an undelivered one is not a log entry
    assert result.deleted["status_change_records"] == 2
    assert count(ctx, WebhookDelivery) == 2
    with ctx.db.read() as session:
        assert list(session.scalars(select(StatusChangeRecord.id))) == ["sc-2"]


def test_expired_status_change_id_is_processed_anew(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    set_retention(admin, 1)
    make_group(ctx, fingerprint="sc")
    body = {"id": "change-1", "fingerprint": ["sc"], "project_id": 1, "new_status": "resolved"}
    first = admin.post("/status-changes", json=body)
    assert first.status_code in (200, 201, 202), first.text
    assert count(ctx, StatusChangeRecord) == 1
    clock.advance(days=2)
    make_group(ctx, fingerprint="keep-project-busy")
    assert run_pass(ctx).deleted["status_change_records"] == 1
    assert count(ctx, StatusChangeRecord) == 0


# -- the pass ------------------------------------------------------------------------------


def fill_expired(ctx: AppContext, admin: TestClient, clock: FakeClock) -> None:
    """Some of everything expired (and some not) under retention 2."""
    set_retention(admin, 2)
    for n in range(5):
        send(admin, fingerprint=[f"old-{n}"], detection_time=iso(T0 - 3 * DAY))
        send(admin, fingerprint=["mixed"], detection_time=iso(T0 - 3 * DAY - n * 60 * 1e-3 * DAY))
    send(admin, fingerprint=["mixed"], detection_time=iso(T0))
    send(admin, type=NOISY_TYPE, fingerprint=["noisy"], detection_time=iso(T0 - 3 * DAY))
    with ctx.db.write() as session:
        session.add(
            StatusChangeRecord(project_id=1, id="old", response={}, created_at=T0 - 3 * DAY)
        )
        session.commit()


def test_dry_run_deletes_nothing_and_counts_what_the_pass_deletes(
    admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    fill_expired(ctx, admin, clock)
    before = {m.__tablename__: count(ctx, m) for m in (Occurrence, Event, Group, HourlyCount)}
    dry = run_pass(ctx, dry_run=True)
    assert dry.dry_run
    after = {m.__tablename__: count(ctx, m) for m in (Occurrence, Event, Group, HourlyCount)}
    assert after == before
    real = run_pass(ctx)
    assert real.deleted["occurrences"] == 11
    assert real.deleted["groups"] == 5
    assert dry.deleted == real.deleted
    assert run_pass(ctx).deleted == dict.fromkeys(real.deleted, 0)  # nothing left


def test_small_batches_delete_the_same(
    settings: Settings, admin: TestClient, app: FastAPI, clock: FakeClock
) -> None:
    ctx = ctx_of(app)
    fill_expired(ctx, admin, clock)
    ctx.settings = settings.model_copy(
        update={"retention_batch_size": 10, "retention_pause_seconds": 0}
    )
    result = run_pass(ctx)
    assert result.deleted["occurrences"] == 11
    assert result.deleted["groups"] == 5
    assert result.batches > 5


def test_concurrent_passes_delete_everything_once(
    admin: TestClient, app: FastAPI, clock: FakeClock, settings: Settings
) -> None:
    """Several processes (here: contexts with engines of their own) run a pass at once."""
    from app.main import build_context

    ctx = ctx_of(app)
    fill_expired(ctx, admin, clock)
    expected = run_pass(ctx, dry_run=True).deleted
    small = settings.model_copy(update={"retention_batch_size": 10, "retention_pause_seconds": 0})
    contexts = []
    for _ in range(3):
        other = build_context(small)
        other.clock = clock
        contexts.append(other)
    results: list[PassResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(contexts))

    def run(c: AppContext) -> None:
        try:
            start.wait()
            results.append(run_pass(c))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in contexts:
        c.db.dispose()
    assert not errors, errors
    total = {t: sum(r.deleted[t] for r in results) for t in expected}
    assert total == expected
    if ON_POSTGRES:
        assert any(r.skipped for r in results) or len([r for r in results if r.batches]) == 1
    assert run_pass(ctx).deleted == dict.fromkeys(expected, 0)


def test_pass_while_ingest_runs(admin: TestClient, app: FastAPI, clock: FakeClock) -> None:
    """Occurrences arriving during a pass are neither lost nor refused."""
    ctx = ctx_of(app)
    fill_expired(ctx, admin, clock)
    stop = threading.Event()
    errors: list[BaseException] = []

    def cleaner() -> None:
        try:
            while not stop.is_set():
                run_pass(ctx)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=cleaner)
    thread.start()
    try:
        outcomes = [
            send(admin, fingerprint=[f"old-{n % 5}"], detection_time=iso(T0))["outcome"]
            for n in range(40)
        ]
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert set(outcomes) <= {"created", "grouped"}
    # Every one of them is stored (with the one "mixed" occurrence sent at T0 before).
    assert count(ctx, Occurrence, Occurrence.detection_time == T0) == 41
    with ctx.db.read() as session:
        hashes = [md5(f"old-{n}") for n in range(5)]
        seen = session.scalar(select(func.sum(Group.times_seen)).where(Group.hash.in_(hashes)))
    # An issue the pass deleted first was opened anew; one that was joined first survived.
    assert 40 <= int(seen or 0) <= 45


def test_jobs_include_retention(admin: TestClient, app: FastAPI, clock: FakeClock) -> None:
    from app.jobs.runner import run_all_once

    ctx = ctx_of(app)
    fill_expired(ctx, admin, clock)
    summary = run_all_once(ctx)
    assert summary["retention"]["deleted"]["groups"] == 5
    assert summary["retention"]["dry_run"] is False


def test_metrics_count_deleted_rows(admin: TestClient, app: FastAPI, clock: FakeClock) -> None:
    ctx = ctx_of(app)
    fill_expired(ctx, admin, clock)

    def deleted_groups() -> float:
        text = admin.get("/metrics").text
        for line in text.splitlines():
            if line.startswith('issue_platform_retention_deleted_rows_total{table="groups"}'):
                return float(line.split()[-1])
        return 0.0

    before = deleted_groups()
    run_pass(ctx)
    assert deleted_groups() == before + 5
    assert "issue_platform_retention_pass_seconds_count" in admin.get("/metrics").text


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's auto-vacuum")
def test_sqlite_gives_free_pages_back(admin: TestClient, app: FastAPI, clock: FakeClock) -> None:
    ctx = ctx_of(app)
    set_retention(admin, 1)
    big = {"blob": "x" * 3000}
    batch = [
        occurrence(fingerprint=[f"big-{n}"], detection_time=iso(T0 - 2 * DAY), evidence_data=big)
        for n in range(300)
    ]
    assert admin.post("/occurrences/batch", json={"occurrences": batch}).status_code == 200
    with ctx.db.engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        assert raw.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    ctx.settings = ctx.settings.model_copy(update={"sqlite_vacuum_pages": 100})
    result = run_pass(ctx)
    assert result.deleted["occurrences"] == 300
    assert result.vacuumed_pages > 200
    # Steps of at most 100 pages, each its own transaction.
    assert result.steps["vacuum"].batches >= 3
    with ctx.db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw.execute("PRAGMA freelist_count").fetchone()[0] == 0


def test_the_pass_yields_longer_while_this_process_ingests(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from app.retention import service

    slept: list[float] = []
    monkeypatch.setattr(service.time, "sleep", slept.append)
    ctx: Any = SimpleNamespace(db=SimpleNamespace(ingest_transactions=5))
    # Ingest ran since the last pause: three times the batch's duration.
    assert service._yield(ctx, 0.01, 0.1, 4) == 5
    # Idle: the configured pause only.
    assert service._yield(ctx, 0.01, 0.1, 5) == 5
    # No pause configured: never waits.
    service._yield(ctx, 0, 0.1, 4)
    assert slept == [pytest.approx(0.3), 0.01]


def test_the_ingest_writer_counts_its_transactions(admin: TestClient, app: FastAPI) -> None:
    """What tells the pass that ingest runs in this process."""
    db = ctx_of(app).db
    before = db.ingest_transactions
    send(admin)
    assert db.ingest_transactions > before
