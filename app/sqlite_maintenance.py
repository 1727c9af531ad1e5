"""SQLite maintenance: the WAL checkpointer, its threads, and the database file's descriptors.

See docs/adr/0007-sqlite-wal-checkpoints.md. :class:`app.db.Database` starts the checkpointer
(``start_checkpointer``) and the engine creates the database file privately on first connect
(:func:`create_private_file`); nothing here knows of sessions or tables.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import mmap
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

# Kept open for the life of the process, never closed: closing any descriptor of a file drops
# every POSIX lock this process holds on it, and SQLite's connections hold theirs on the database.
_SYNC_FDS: dict[tuple[int, int], int] = {}
_SYNC_FDS_LOCK = threading.Lock()


def create_private_file(path: str) -> None:
    """Create the SQLite database file ``path`` with mode 600 if it does not exist yet.

    SQLite would create it with 644 (less the umask), and it holds every tenant's data and
    the webhook secrets. Its -wal, -shm and journal files take the database file's mode, so
    they are private too. The descriptor is kept, like :func:`_sync_fd`'s (and used by it):
    closing it could drop the POSIX locks of a connection another thread opened meanwhile.
    In-memory databases and ``file:`` URIs are left to SQLite.
    """
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    with _SYNC_FDS_LOCK:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return
        except OSError:
            return  # e.g. its folder is missing: SQLite's own error says so next
        st = os.fstat(fd)
        _SYNC_FDS[(st.st_dev, st.st_ino)] = fd


def _sync_fd(path: str) -> int:
    """A read-only descriptor of the database file, for fsync only (one per file and process)."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino)
    with _SYNC_FDS_LOCK:
        fd = _SYNC_FDS.get(key)
        if fd is None:
            fd = _SYNC_FDS[key] = os.open(path, os.O_RDONLY)
        return fd


T = TypeVar("T")


class PriorityRunner:
    """A thread that runs the calls handed to it, at the priority of the thread that made it.

    The WAL checkpointer's thread lowers its own priority, so that request handling pre-empts
    its long passive passes; its short final pass, though, holds the ingest writer's gate, and
    at the lowered priority the busy event loop stretched it (10–70 ms instead of 4–23 ms
    measured at 2,300 posts/s). That pass runs here instead. Linux threads inherit the nice
    value of the thread that starts them, hence the runner is started by ``start_checkpointer``
    and not by the checkpointer's thread.
    """

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, call: Callable[[], T]) -> T:
        """Run ``call`` on the runner's thread; its result, or its exception raised here."""
        future: Future[T] = Future()
        self._calls.put((call, future))
        return future.result()

    def close(self) -> None:
        """Stop the thread once the calls handed over so far are done."""
        self._calls.put(None)
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            call, future = item
            try:
                future.set_result(call())
            except BaseException as exc:  # noqa: BLE001  (handed to the caller)
                future.set_exception(exc)


class WalCheckpointer:
    """Moves the WAL into the database file without making writers wait for the disk.

    Every checkpoint that copies the whole WAL ends with an fsync of the database file, and only
    such a complete checkpoint lets the next writer start the WAL over (else the file grows
    without bound). Under steady writes a passive checkpoint is never complete (frames arrive
    while it copies), and a FULL one holds the write lock through its fsyncs: tens of
    milliseconds on an ordinary disk, which every request waiting to commit would pay.

    So each cycle runs one passive pass, which blocks nobody, and the pages it copied are then
    synced from here, outside every SQLite lock. Only now and then (COMPLETE_FRAMES,
    COMPLETE_SECONDS) does a cycle complete the checkpoint: more passive passes, each with less
    left to copy than the one before, then a FULL pass that copies and syncs only what arrived
    in the last few milliseconds. That final pass is all the writers wait for; it runs at the
    process's own priority (``final_runner``), the passive passes at a lower one.
    """

    # Between cycles, the WAL alone is written back this often (see sync_wal).
    WAL_SYNC_SECONDS = 0.1
    # Before a completing pass, each passive pass copies what arrived during the one before,
    # so three leave only a few milliseconds' worth to the pass that blocks writers.
    PASSES = 3
    # A complete checkpoint (the WAL starts over) once the WAL holds this many pages (512 MiB
    # at 4 KiB pages) or this long after the last one: its final pass makes writers wait for
    # two fsyncs (3-13 ms here), so it is rare; the passive passes keep the copying current in
    # between. Small group commits write 20,000-40,000 pages a second: at 32,768 pages the
    # final pass came about once a second and delayed about 1 % of the requests (the p99).
    COMPLETE_FRAMES = 131_072
    COMPLETE_SECONDS = 10.0
    # The WAL length (pages, about 1.6 GB) at which a commit of a process running the
    # checkpointer checkpoints by itself: only if the checkpointer cannot keep up or has died.
    SAFETY_NET_PAGES = 400_000
    # How long the final pass waits for other processes' writers and older readers; it holds
    # the write lock meanwhile, so it gives up early and the next cycle tries again.
    BUSY_TIMEOUT_MS = 100

    def __init__(
        self, path: str, gate: threading.RLock, final_runner: PriorityRunner | None = None
    ) -> None:
        self.path = path
        self.gate = gate
        # Where the final, gated pass runs (see PriorityRunner); None: on the calling thread.
        self.final_runner = final_runner
        self._conn: sqlite3.Connection | None = None
        self._completed_at = time.monotonic()
        # The WAL as last synced (pages, modification time): an idle WAL is not synced again.
        self._synced: tuple[int, int] | None = None
        self._wal_seen: tuple[int, int] | None = None

    def lower_priority(self) -> None:
        """Let request threads pre-empt this one (Linux: niceness is per thread)."""
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self.BUSY_TIMEOUT_MS}")
            # NORMAL: the checkpoint fsyncs the WAL before copying and the database at the end.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _pass(self, mode: str) -> tuple[int, int, int]:
        """One checkpoint pass: (busy, pages in the WAL, pages now in the database)."""
        row = self._connection().execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def _sync(self) -> None:
        """Make durable the pages a passive pass copied (and the WAL up to now)."""
        os.fsync(_sync_fd(self.path))
        self._sync_wal_file(os.fsync)

    def _sync_wal_file(self, sync: Callable[[int], None]) -> None:
        """``sync`` (fsync or fdatasync) on a descriptor of the WAL opened for it.

        Closing it is safe: SQLite locks the database and -shm files, never the WAL (closing a
        descriptor of the database file would drop its locks: see _sync_fd).
        """
        wal = os.open(self.path + "-wal", os.O_RDONLY)
        try:
            sync(wal)
        finally:
            os.close(wal)

    def sync_wal(self) -> None:
        """Write the WAL back to disk now if it grew since the last look (between cycles).

        A commit that appends to the WAL waits for any writeback of the WAL's last block, and
        an fsync writes back everything appended since the one before: after a second of
        ingest that took 20-48 ms here, and the commits of that moment waited as long. Writing
        the WAL alone back every WAL_SYNC_SECONDS keeps each writeback small, while the copying
        into the database stays once a cycle, where pages written many times in a second are
        copied once. And that writeback leaves out the WAL's last, partly written page
        (``write_back_wal``), the one the next commit appends to: no commit waits for it. The
        WAL is made durable by the checkpoint cycle's syncs, not here.
        """
        stat = self._wal_stat()
        if stat is None:
            return
        state = (stat.st_size, stat.st_mtime_ns)
        if state == self._wal_seen:
            return
        self._sync_wal_file(write_back_wal)
        self._wal_seen = state

    def _wal_stat(self) -> os.stat_result | None:
        """The WAL file's status; None when there is none."""
        try:
            return os.stat(self.path + "-wal")
        except OSError:
            return None

    def cycle(self) -> None:
        """Copy the WAL into the database; now and then complete it so the WAL starts over."""
        now = time.monotonic()
        due = now - self._completed_at >= self.COMPLETE_SECONDS
        copied_before = -1
        for _ in range(self.PASSES):
            # ``frames`` is the WAL's length when the pass began: what arrived during the pass
            # shows only in the next pass's answer.
            busy, frames, copied = self._pass("PASSIVE")
            if busy:
                return  # another process's checkpointer is copying: its cycle does the work
            if frames <= 0 or frames == copied_before:
                # Not in WAL mode, empty, or nothing new: all of the WAL is in the database.
                self._completed_at = now
                return
            copied_before = copied
            stat = self._wal_stat()
            state = (frames, -1 if stat is None else stat.st_mtime_ns)
            if frames == copied and state == self._synced:
                # Nothing written since the last sync: all of the WAL is in the database.
                self._completed_at = now
                return
            self._sync()
            self._synced = state
            if not (due or frames >= self.COMPLETE_FRAMES):
                return  # one pass a cycle keeps the copying (and the fsyncs) small
        # The gate keeps this process's ingest writer out (it serves HTTP while it waits rather
        # than sleeping in SQLite's busy handler); other processes wait on the write lock.
        if self.final_runner is not None:
            busy, frames, copied = self.final_runner.run(self._final_pass)
        else:
            busy, frames, copied = self._final_pass()
        if not busy and frames == copied:
            self._completed_at = now

    def _final_pass(self) -> tuple[int, int, int]:
        with self.gate:
            return self._pass("FULL")

    def close(self) -> None:
        """Close the connection (the next cycle opens a new one)."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


# sync_file_range(2): wait for a writeback under way, start one, and wait for it to end.
_WRITE_BACK_AND_WAIT = 1 | 2 | 4


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _sync_file_range()
# What a file system without sync_file_range answers.
_UNSUPPORTED = frozenset((errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ESPIPE))


def write_back_wal(fd: int) -> None:
    """Write the WAL's whole pages back to disk and wait; leave its last, partial page dirty.

    The next commit writes its first frame header into the page where the last frame ended. A
    writeback of that page (an ``fdatasync`` of the whole file) made such commits wait: the
    fixed-rate p99 of single POSTs went from 5.9 ms (median of 21 runs, up to 11.8) to 4.2 ms
    (18 runs, up to 7.6) with the tail left out (ADR 0007). Without ``sync_file_range`` (not
    Linux, or a file system that refuses it), the whole file is synced as before.
    """
    global _SYNC_FILE_RANGE  # noqa: PLW0603  (dropped once a file system refuses it)
    sync_range = _SYNC_FILE_RANGE
    if sync_range is not None:
        end = os.fstat(fd).st_size
        end -= end % mmap.PAGESIZE
        if end <= 0 or sync_range(fd, 0, end, _WRITE_BACK_AND_WAIT) == 0:
            return
        code = ctypes.get_errno()
        if code not in _UNSUPPORTED:
            raise OSError(code, os.strerror(code))
        log.info("sync_file_range refused (%s): the WAL is synced whole", os.strerror(code))
        _SYNC_FILE_RANGE = None
    os.fdatasync(fd)


class BackgroundCheckpointer:
    """The checkpointer thread of one SQLite file, every ``interval_seconds``, until stopped.

    From its start, commits of ``engine``'s connections never checkpoint by themselves: every
    connection, pooled before or opened after, gets the safety net at its next checkout.
    """

    def __init__(
        self, engine: Engine, path: str, gate: threading.RLock, interval_seconds: float
    ) -> None:
        self.engine = engine
        event.listen(engine, "checkout", self._safety_net)
        # Started from this thread, so it keeps this thread's priority (see PriorityRunner).
        self._final_runner = PriorityRunner("sqlite-checkpoint-final")
        checkpointer = WalCheckpointer(path, gate, self._final_runner)
        self._stop = threading.Event()

        step = min(interval_seconds, WalCheckpointer.WAL_SYNC_SECONDS)

        def run() -> None:
            checkpointer.lower_priority()
            due = time.monotonic() + interval_seconds
            while not self._stop.wait(step):
                try:
                    if time.monotonic() >= due:
                        due = time.monotonic() + interval_seconds
                        checkpointer.cycle()
                    else:
                        checkpointer.sync_wal()
                except Exception:  # noqa: BLE001  (a busy or missing file is retried next time)
                    log.debug("WAL checkpoint skipped", exc_info=True)
                    checkpointer.close()
            checkpointer.close()

        self._thread = threading.Thread(target=run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    @staticmethod
    def _safety_net(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if not record.info.get("wal_safety_net"):
            dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={WalCheckpointer.SAFETY_NET_PAGES}")
            record.info["wal_safety_net"] = True

    def stop(self) -> None:
        """Stop the thread (a cycle under way finishes) and the safety net's listener."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._final_runner.close()
        event.remove(self.engine, "checkout", self._safety_net)
