"""Group commit: one writer thread per process turns concurrent requests into one transaction.

Request handlers hand their validated-later items to the writer and await the answer. The writer
takes everything waiting (up to ``ingest_group_max_items``) and ingests it in one batch-first
transaction; while that transaction runs, new requests queue up and form the next batch. So a
lone request pays one transaction, and many concurrent requests share the per-transaction costs.
Each request is answered only after the commit that holds its items.

When the database is unavailable (locked, unreachable) or cannot write (disk full, read-only,
I/O error), the transaction's error is handed to every request of the group, which answer 503,
without replaying them one by one; the thread itself carries on with the next group, so the
service recovers by itself when the database is back. A failure to write is also recorded for
``/readyz`` (``Database.write_health``), and the next committed group clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from app.auth.principal import Principal
from app.context import AppContext
from app.db_errors import WriteHealth, database_unavailable
from app.errors import ServiceUnavailable
from app.metrics import INGEST_BATCH_SIZE, WRITER_FAILURES
from app.occurrences.ingest.journal import fold_if_due, idle_wait
from app.occurrences.ingest.outcomes import IngestResult
from app.occurrences.ingest.usecase import ingest_requests

log = logging.getLogger(__name__)

# Group formation of the inline writer (see _flush_inline).
GATHER_SECONDS = 0.002
GATHER_STEP_SECONDS = 0.0002
# How soon the inline writer looks again while the WAL checkpointer's final pass runs. Not
# less than 1 ms: uvloop's timers count whole milliseconds and run a shorter delay at once, so
# 0.5 ms made the event loop spin (hundreds to thousands of retries per final pass, measured)
# on the core the final pass needs, stretching the very pass the writer waits for.
GATE_RETRY_SECONDS = 0.001


class _Wake:
    """Put on the thread writer's queue to make it look at the journal (``watch_journal``)."""


_WAKE = _Wake()


@dataclass
class _Job:
    raws: Sequence[Any]
    principal: Principal
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[IngestResult]]


def _settle(
    job: _Job, result: list[IngestResult] | None, error: BaseException | None, inline: bool = False
) -> None:
    def apply() -> None:
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            assert result is not None
            job.future.set_result(result)

    if inline:
        apply()
        return
    # RuntimeError: the request's loop is gone (its client left during shutdown).
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(apply)


class GroupCommitWriter:
    """The per-process ingest writer."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        max_items: int,
        inline: bool = False,
        gate: threading.RLock | None = None,
        health: WriteHealth | None = None,
        on_transaction: Callable[[], None] | None = None,
        after_group: Callable[[], None] | None = None,
        idle_wait: Callable[[], float | None] | None = None,
    ) -> None:
        self.ctx = ctx
        # Told of every transaction (Database.note_ingest_transaction: the retention pass
        # yields more while ingest runs).
        self._on_transaction = on_transaction
        # Run after a group's answers went out (the counter journal's fold when due).
        self._after_group = after_group
        # When ``after_group`` is due again with no group to follow (None: nothing waits):
        # asked after each group, and by a timer or the thread's wait until it answers None,
        # so the last counts of a burst are folded one interval later (journal.idle_wait).
        self._idle_wait = idle_wait
        self._idle_timer: asyncio.TimerHandle | None = None
        self.max_items = max_items
        self.inline = inline
        # Where failures to write and successful commits are recorded, for /readyz
        # (Database.write_health).
        self._health = health if health is not None else WriteHealth()
        # Held around each transaction; the SQLite WAL checkpointer takes it for its short
        # blocking pass (Database.checkpoint_gate).
        self._gate = gate if gate is not None else threading.RLock()
        self._queue: queue.SimpleQueue[_Job | _Wake | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._waiting: deque[_Job] = deque()
        self._waiting_items = 0
        self._scheduled = False
        self._gather_started = 0.0
        self._seen = 0

    async def submit(self, raws: Sequence[Any], principal: Principal) -> list[IngestResult]:
        """Ingest ``raws`` in the next group transaction; returns after its commit."""
        if self._closed:
            raise ServiceUnavailable("the service is shutting down, retry later")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[IngestResult]] = loop.create_future()
        if self.inline:
            self._waiting.append(_Job(raws, principal, loop, future))
            self._waiting_items += len(raws)
            if not self._scheduled:
                self._scheduled = True
                self._gather_started = loop.time()
                self._seen = 0
                # After the callbacks already queued: the requests read in this loop
                # iteration reach submit() first and join the same transaction.
                loop.call_soon(self._flush_inline)
            return await future
        self._ensure_thread()
        self._queue.put(_Job(raws, principal, loop, future))
        return await future

    def watch_journal(self) -> None:
        """Counts were journaled outside this writer's groups: fold them once due.

        ``POST /ingest`` ingests on a worker thread, not through the writer; calling this from
        the event loop afterwards gives its journal rows the same fold one interval later.
        """
        if self._closed or self._idle_wait is None:
            return
        if self.inline:
            self._arm_idle(asyncio.get_running_loop())
        else:
            self._ensure_thread()
            self._queue.put(_WAKE)

    def _flush_inline(self) -> None:
        loop = asyncio.get_running_loop()
        # Gather: while requests keep arriving, wait a little (at most GATHER_SECONDS after the
        # first) so that one transaction takes them all; a lone request waits for nothing.
        if (
            len(self._waiting) > self._seen
            and self._waiting_items < self.max_items
            and loop.time() - self._gather_started < GATHER_SECONDS
        ):
            first = self._seen == 0
            self._seen = len(self._waiting)
            if first:
                loop.call_soon(self._flush_inline)
            else:
                loop.call_later(GATHER_STEP_SECONDS, self._flush_inline)
            return
        gate = self._gate
        if not gate.acquire(blocking=False):
            # The WAL checkpointer's final pass holds the database for a few milliseconds;
            # the loop keeps reading requests (they join this group) instead of blocking.
            loop.call_later(GATE_RETRY_SECONDS, self._flush_inline)
            return
        try:
            self._take_and_process(loop)
        finally:
            gate.release()

    def _take_and_process(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs: list[_Job] = []
        count = 0
        while self._waiting and count < self.max_items:
            job = self._waiting.popleft()
            jobs.append(job)
            count += len(job.raws)
        self._waiting_items -= count
        if self._waiting:
            self._gather_started = loop.time()
            self._seen = 0
            loop.call_soon(self._flush_inline)
        else:
            self._scheduled = False
        self._process(jobs)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Finish queued work and stop the thread."""
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        idle: float | None = None  # how long to wait for a job before the idle fold
        while not stopping:
            try:
                job = self._queue.get(timeout=idle)
            except queue.Empty:
                if self._next_idle() == 0.0:  # still due (see _idle_inline)
                    with self._gate:
                        self._run_after_group()
                idle = self._next_idle()
                continue
            if job is None:
                break
            if isinstance(job, _Wake):
                idle = self._next_idle()
                continue
            jobs = [job]
            count = len(job.raws)
            while count < self.max_items:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                if isinstance(more, _Wake):
                    continue  # the group's own idle check follows it
                jobs.append(more)
                count += len(more.raws)
            with self._gate:
                self._process(jobs)
            idle = self._next_idle()

    def _process(self, jobs: list[_Job]) -> None:
        INGEST_BATCH_SIZE.observe(sum(len(j.raws) for j in jobs))
        if self._on_transaction is not None:
            self._on_transaction()
        health = self._health
        try:
            answers = ingest_requests(self.ctx, [(j.raws, j.principal) for j in jobs])
        except Exception as exc:
            # The statements run on the driver's cursor, out of the engine's error hook.
            cannot_write = health.note(exc)
            unavailable = cannot_write is not None or database_unavailable(exc)
            WRITER_FAILURES.labels(reason="unavailable" if unavailable else "error").inc()
            if len(jobs) == 1 or unavailable:
                # The database's failure, not one request's: replaying would only fail (or
                # wait for the database) once more per request.
                if cannot_write is not None:
                    log.warning(
                        "database cannot write (%s: %s); %d request(s) answered 503",
                        cannot_write,
                        type(exc).__name__,
                        len(jobs),
                    )
                elif unavailable:
                    log.warning(
                        "database unavailable (%s); %d request(s) answered 503",
                        type(exc).__name__,
                        len(jobs),
                    )
                for job in jobs:
                    _settle(job, None, exc, self.inline)
                return
            # Keep one request's failure from failing the others: replay them one by one.
            log.warning(
                "group transaction failed (%s); replaying requests alone", type(exc).__name__
            )
            self._replay(jobs)
            return
        if any(r.status_code < 300 for answer in answers for r in answer):
            health.succeeded()
        for job, answer in zip(jobs, answers, strict=True):
            _settle(job, answer, None, self.inline)
        self._fold_later()

    def _fold_later(self) -> None:
        """Run ``after_group`` once the group's answers went out."""
        if self._after_group is None:
            return
        if self.inline:
            # After the callbacks that send this group's answers (queued by _settle).
            loop = asyncio.get_running_loop()
            loop.call_soon(self._after_group_inline)
            self._arm_idle(loop)
        else:
            self._run_after_group()  # the thread holds the gate (_run)

    def _next_idle(self) -> float | None:
        """``idle_wait``'s answer, or None when nothing may wait (errors: logged, None)."""
        if self._idle_wait is None:
            return None
        try:
            return self._idle_wait()
        except Exception:
            log.exception("idle check failed")
            return None

    def _arm_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the inline writer's idle timer if none runs and something will be due."""
        if self._idle_timer is not None or self._closed:
            return
        wait = self._next_idle()
        if wait is not None:
            # At least the gate's retry delay: uvloop runs a sub-millisecond delay at once.
            self._idle_timer = loop.call_later(
                max(wait, GATE_RETRY_SECONDS), self._idle_inline, loop
            )

    def _idle_inline(self, loop: asyncio.AbstractEventLoop) -> None:
        self._idle_timer = None
        # Only when still due: the fold after a group may have taken the rows meanwhile (with
        # an interval of 0 it always has), and an empty fold is still a write transaction.
        if self._next_idle() == 0.0 and not self._after_group_inline():
            # The WAL checkpointer's final pass (a few milliseconds): look again shortly.
            self._idle_timer = loop.call_later(GATE_RETRY_SECONDS, self._idle_inline, loop)
            return
        self._arm_idle(loop)

    def _after_group_inline(self) -> bool:
        """``after_group`` under the gate, like a group transaction; False: the gate was busy.

        The gate is held by the WAL checkpointer's final pass: after a group, the next group's
        run does the work instead; the idle timer looks again shortly.
        """
        gate = self._gate
        if not gate.acquire(blocking=False):
            return False
        try:
            self._run_after_group()
        finally:
            gate.release()
        return True

    def _run_after_group(self) -> None:
        if self._after_group is None:
            return
        try:
            self._after_group()
        except Exception:  # the writer carries on: the journal waits for the next fold
            log.exception("after-group work failed")

    def _replay(self, jobs: list[_Job]) -> None:
        for position, job in enumerate(jobs):
            try:
                [answer] = ingest_requests(self.ctx, [(job.raws, job.principal)])
            except Exception as exc:
                _settle(job, None, exc, self.inline)
                if self._health.note(exc) is not None or database_unavailable(exc):
                    for rest in jobs[position + 1 :]:
                        _settle(rest, None, exc, self.inline)
                    return
            else:
                _settle(job, answer, None, self.inline)


def writer_of(ctx: AppContext) -> GroupCommitWriter:
    """The context's writer (created on first use)."""
    writer = ctx.ingest_writer
    if writer is None:
        writer = ctx.ingest_writer = GroupCommitWriter(
            ctx,
            max_items=ctx.settings.ingest_group_max_items,
            inline=ctx.settings.ingest_writer == "inline",
            gate=ctx.db.checkpoint_gate,
            health=ctx.db.write_health,
            on_transaction=ctx.db.note_ingest_transaction,
            after_group=partial(fold_if_due, ctx),
            idle_wait=partial(idle_wait, ctx),
        )
    # The context names the writer by a protocol: it must not import this module's answers.
    if not isinstance(writer, GroupCommitWriter):
        raise TypeError(f"the context's ingest writer is a {type(writer).__name__}")
    return writer
