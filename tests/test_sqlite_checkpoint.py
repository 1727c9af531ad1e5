"""The SQLite WAL checkpointer: copies the WAL without making writers wait for the disk.

SQLite only (the checkpointer does nothing on PostgreSQL). Real files, real threads.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app import sqlite_maintenance
from app.auth.principal import Principal
from app.config import Settings
from app.db import Database, create_db_engine
from app.issue_types.service import reload_registry
from app.main import build_context
from app.organizations.defaults import ensure_defaults
from app.sqlite_maintenance import PriorityRunner, WalCheckpointer, _sync_fd, write_back_wal
from tests.builders import occurrence
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="the WAL checkpointer is SQLite's")


def _database(tmp_path: Path, **kwargs: int) -> tuple[Database, str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = str(tmp_path / "wal.db")
    db = Database(create_db_engine(f"sqlite:///{path}", **kwargs))
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    return db, path


def _write(db: Database, rows: int, start: int = 0) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO t (id, body) VALUES (:id, :body)"),
            [{"id": start + i, "body": "x" * 2000} for i in range(rows)],
        )


def _wal_state(path: str) -> tuple[int, int]:
    """(pages in the WAL, pages already copied to the database), read without side effects.

    From the WAL index (the -shm file): its header's mxFrame and the checkpoint's nBackfill,
    in the machine's byte order (SQLite's file format documentation, "WAL-index format").
    """
    head = Path(path + "-shm").read_bytes()[:100]
    (mx_frame,) = struct.unpack_from("=I", head, 16)
    (backfilled,) = struct.unpack_from("=I", head, 96)
    return mx_frame, backfilled


class _ForbiddenGate:
    """A gate the code under test must not take."""

    def __enter__(self) -> None:
        raise AssertionError("the completing pass ran")

    def __exit__(self, *_: object) -> None:
        return None


def test_commits_checkpoint_only_at_the_safety_net_once_the_checkpointer_runs(
    tmp_path: Path,
) -> None:
    db, _ = _database(tmp_path)
    with db.engine.connect() as conn:  # pooled before the checkpointer starts
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    db.start_checkpointer(0)  # off: SQLite's own automatic checkpoints stay
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    db.start_checkpointer(60)
    for engine in (db.engine, db.write_sessions.kw["bind"]):
        with engine.connect() as conn:
            assert (
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
                == WalCheckpointer.SAFETY_NET_PAGES
            )
    db.dispose()


def test_a_cycle_that_is_not_due_copies_the_wal_without_blocking_writers(tmp_path: Path) -> None:
    db, path = _database(tmp_path, wal_autocheckpoint=100_000)
    _write(db, 200)
    frames, copied = _wal_state(path)
    assert frames > 0 and copied == 0
    checkpointer = WalCheckpointer(path, _ForbiddenGate())  # type: ignore[arg-type]
    checkpointer.cycle()
    frames, copied = _wal_state(path)
    assert frames > 0
    assert copied == frames  # copied (and synced) by the passive pass
    checkpointer.close()
    db.dispose()


def test_a_due_cycle_completes_the_checkpoint_so_the_wal_starts_over(tmp_path: Path) -> None:
    db, path = _database(tmp_path, wal_autocheckpoint=100_000)
    _write(db, 300)
    checkpointer = WalCheckpointer(path, db.checkpoint_gate)
    checkpointer._completed_at -= WalCheckpointer.COMPLETE_SECONDS  # due now
    checkpointer.cycle()
    frames_before, copied = _wal_state(path)
    assert copied == frames_before > 0
    _write(db, 1, start=10_000)
    frames_after, _ = _wal_state(path)
    # The next commit started the WAL over: it holds that commit's few pages only.
    assert frames_after < frames_before
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 301
    checkpointer.close()
    db.dispose()


def test_a_cycle_completes_while_another_thread_keeps_committing(tmp_path: Path) -> None:
    db, path = _database(tmp_path, wal_autocheckpoint=100_000)
    checkpointer = WalCheckpointer(path, db.checkpoint_gate)
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        while not stop.is_set():
            with db.checkpoint_gate:  # as the ingest writer does
                _write(db, 5, start=written[0])
            written[0] += 5

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        checkpointer._completed_at -= WalCheckpointer.COMPLETE_SECONDS
        checkpointer.cycle()
        assert checkpointer._completed_at > time.monotonic() - 5  # the FULL pass completed
    finally:
        stop.set()
        thread.join()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == written[0]
    checkpointer.close()
    db.dispose()


def test_the_background_thread_checkpoints_and_stops(tmp_path: Path) -> None:
    db, path = _database(tmp_path, wal_autocheckpoint=100_000)
    _write(db, 200)
    assert _wal_state(path)[1] == 0
    db.start_checkpointer(0.02)
    deadline = time.monotonic() + 10
    while _wal_state(path)[1] == 0:
        assert time.monotonic() < deadline, "the WAL was never checkpointed"
        time.sleep(0.02)
    db.dispose()
    assert db._checkpointer is None


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness")
def test_passive_passes_run_niced_and_the_gated_pass_at_the_process_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int]] = []
    real_pass = WalCheckpointer._pass

    def spy(self: WalCheckpointer, mode: str) -> tuple[int, int, int]:
        seen.append((mode, _niceness()))
        return real_pass(self, mode)

    monkeypatch.setattr(WalCheckpointer, "_pass", spy)
    monkeypatch.setattr(WalCheckpointer, "COMPLETE_SECONDS", 0.0)  # every cycle completes
    db, _ = _database(tmp_path, wal_autocheckpoint=100_000)
    own = _niceness()
    stop = threading.Event()

    def writer() -> None:  # new frames for every pass, so that cycles reach the final pass
        start = 0
        while not stop.is_set():
            with db.checkpoint_gate:
                _write(db, 5, start=start)
            start += 5

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        db.start_checkpointer(0.02)
        deadline = time.monotonic() + 10
        while not any(mode == "FULL" for mode, _ in seen):
            assert time.monotonic() < deadline, "no completing pass ran"
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join()
        db.dispose()
    assert set(seen) == {("PASSIVE", max(own, 10)), ("FULL", own)}


def test_the_priority_runner_hands_back_results_and_errors() -> None:
    runner = PriorityRunner("test-runner")
    assert runner.run(lambda: threading.current_thread().name) == "test-runner"
    with pytest.raises(ZeroDivisionError):
        runner.run(lambda: 1 // 0)
    assert runner.run(lambda: 42) == 42  # still serving after an error
    runner.close()


def test_the_sync_descriptor_is_opened_once_per_file_and_kept(tmp_path: Path) -> None:
    db, path = _database(tmp_path)
    fd = _sync_fd(path)
    assert _sync_fd(path) == fd
    os.fstat(fd)  # still open: closing it would drop this process's SQLite locks on the file
    db.dispose()


def test_the_inline_writer_waits_for_the_checkpoint_gate_without_blocking_the_loop(
    settings: Settings,
) -> None:
    from app.occurrences.ingest.writer import GroupCommitWriter

    ctx = build_context(settings)
    ensure_defaults(ctx.db)
    with ctx.db.read() as session:
        reload_registry(session, ctx.registry)
    writer = GroupCommitWriter(ctx, max_items=100, inline=True, gate=ctx.db.checkpoint_gate)

    # The final pass holds the gate on a thread of its own (the gate is re-entrant: the holding
    # thread itself would pass).
    held, release = threading.Event(), threading.Event()

    def final_pass() -> None:
        with ctx.db.checkpoint_gate:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=final_pass)
    holder.start()
    assert held.wait(5)

    async def scenario() -> tuple[bool, int, str]:
        task = asyncio.create_task(writer.submit([occurrence()], Principal.admin()))
        ticks = 0
        for _ in range(20):  # the loop keeps running while the writer waits
            await asyncio.sleep(0.002)
            ticks += 1
        waited = not task.done()
        release.set()
        [result] = await asyncio.wait_for(task, 5)
        return waited, ticks, str(result.body["outcome"])

    waited, ticks, outcome = asyncio.run(scenario())
    holder.join(5)
    assert waited and ticks == 20
    assert outcome == "created"
    ctx.db.dispose()


def test_a_cycle_leaves_the_work_to_another_process_copying_at_the_same_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, path = _database(tmp_path)
    checkpointer = WalCheckpointer(path, _ForbiddenGate())  # type: ignore[arg-type]
    checkpointer._completed_at -= WalCheckpointer.COMPLETE_SECONDS  # due
    before = checkpointer._completed_at
    passes: list[str] = []

    def busy_pass(mode: str) -> tuple[int, int, int]:
        passes.append(mode)
        return 1, -1, -1  # what SQLite answers while another connection checkpoints

    monkeypatch.setattr(checkpointer, "_pass", busy_pass)
    monkeypatch.setattr(checkpointer, "_sync", lambda: pytest.fail("synced nothing"))
    checkpointer.cycle()
    assert passes == ["PASSIVE"]
    assert checkpointer._completed_at == before  # not taken for a complete checkpoint
    db.dispose()


def test_every_connection_gets_the_configured_page_cache(tmp_path: Path) -> None:
    # A group commit of a few hundred occurrences dirties more than SQLite's default 2 MiB;
    # each pooled connection (reader or writer) is opened with the configured cache instead.
    db, _ = _database(tmp_path, cache_mb=8)
    for engine in (db.engine, db.write_sessions.kw["bind"]):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -8 * 1024
    db.dispose()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ctx.db'}",
        data_dir=tmp_path / "data",
        admin_token="x" * 32,
        sqlite_cache_mb=3,
    )
    ctx = build_context(settings)
    with ctx.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -3 * 1024
    ctx.db.dispose()


def test_a_cycle_does_not_sync_a_wal_unchanged_since_its_last_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, path = _database(tmp_path, wal_autocheckpoint=100_000)
    _write(db, 50)
    checkpointer = WalCheckpointer(path, _ForbiddenGate())  # type: ignore[arg-type]
    syncs: list[int] = []
    sync = checkpointer._sync
    monkeypatch.setattr(checkpointer, "_sync", lambda: syncs.append(1) or sync())
    checkpointer.cycle()
    assert syncs == [1]
    checkpointer.cycle()  # idle: nothing to sync, and the WAL is all in the database
    assert syncs == [1]
    _write(db, 1, start=1_000)
    checkpointer.cycle()
    assert syncs == [1, 1]
    checkpointer.close()
    db.dispose()


def test_between_cycles_the_wal_is_synced_only_when_it_grew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, path = _database(tmp_path, wal_autocheckpoint=100_000)
    checkpointer = WalCheckpointer(path, _ForbiddenGate())  # type: ignore[arg-type]
    synced: list[int] = []
    monkeypatch.setattr(
        sqlite_maintenance, "write_back_wal", lambda fd: synced.append(fd) or write_back_wal(fd)
    )
    _write(db, 20)
    checkpointer.sync_wal()
    assert len(synced) == 1
    checkpointer.sync_wal()  # nothing appended since: no writeback to ask for
    assert len(synced) == 1
    _write(db, 20, start=100)
    checkpointer.sync_wal()
    assert len(synced) == 2
    db.dispose()


@pytest.mark.skipif(
    sqlite_maintenance._SYNC_FILE_RANGE is None, reason="sync_file_range is Linux's"
)
def test_the_wal_writeback_between_cycles_leaves_out_the_page_being_appended_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranges: list[tuple[int, int, int]] = []
    real = sqlite_maintenance._SYNC_FILE_RANGE
    assert real is not None

    def recording(fd: int, start: int, end: int, flags: int) -> int:
        ranges.append((start, end, flags))
        return real(fd, start, end, flags)

    monkeypatch.setattr(sqlite_maintenance, "_SYNC_FILE_RANGE", recording)
    path = tmp_path / "wal"
    page = sqlite_maintenance.mmap.PAGESIZE
    fd = os.open(path, os.O_CREAT | os.O_RDWR)
    try:
        os.write(fd, b"x" * (3 * page + 24))  # three whole pages and a frame header's start
        write_back_wal(fd)
        os.write(fd, b"y" * (page - 24))  # the partial page is now whole
        write_back_wal(fd)
        os.ftruncate(fd, 100)  # less than a page: nothing to write back yet
        write_back_wal(fd)
    finally:
        os.close(fd)
    # Written back and waited for (WAIT_BEFORE | WRITE | WAIT_AFTER), the tail left out.
    assert ranges == [(0, 3 * page, 7), (0, 4 * page, 7)]


def test_a_file_system_refusing_sync_file_range_gets_the_whole_file_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctypes
    import errno

    calls: list[str] = []

    def refusing(fd: int, start: int, end: int, flags: int) -> int:
        calls.append("range")
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(sqlite_maintenance, "_SYNC_FILE_RANGE", refusing)
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append("fdatasync") or real(fd))
    fd = os.open(tmp_path / "wal", os.O_CREAT | os.O_RDWR)
    try:
        os.write(fd, b"x" * (2 * sqlite_maintenance.mmap.PAGESIZE + 24))
        write_back_wal(fd)
        write_back_wal(fd)  # not asked again
    finally:
        os.close(fd)
    assert calls == ["range", "fdatasync", "fdatasync"]
    assert sqlite_maintenance._SYNC_FILE_RANGE is None


def test_the_thread_syncs_the_wal_between_its_cycles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, path = _database(tmp_path, wal_autocheckpoint=100_000)
    calls: list[str] = []
    monkeypatch.setattr(WalCheckpointer, "WAL_SYNC_SECONDS", 0.01)
    monkeypatch.setattr(WalCheckpointer, "cycle", lambda self: calls.append("cycle"))
    monkeypatch.setattr(WalCheckpointer, "sync_wal", lambda self: calls.append("sync"))
    db.start_checkpointer(0.2)
    time.sleep(0.5)
    db.dispose()
    assert 1 <= calls.count("cycle") <= 3
    assert calls.count("sync") >= 10
