"""``python -m bench.cpu``: CPU µs per occurrence of the ingest path, in process, deterministic.

Wall-clock rates move with the load of a shared machine; the CPU time of one process moves much
less. This runs the batch route's work without HTTP — parse the body with orjson, the use case
(validation, reads, decisions, writes, commit on SQLite), the answer serialised — over batches
of 100 occurrences where 10 % open a new issue (the ``make bench`` mixed workload, smaller), and
prints the CPU time per occurrence (``time.process_time``, SQLite's own work included), best of
several rounds. As in the server, the WAL is checkpointed by its own thread: the figure that
moves least is the CPU of the ingesting thread (``time.thread_time``); the whole process's
(checkpoints included) is printed beside it. ``--per-request 1`` (or 5) measures small group
commits instead, where the per-transaction cost dominates. ``--profile`` adds a cProfile
breakdown (CPU time) of one more round; ``--by-statement`` the CPU per occurrence of each kind
of SQL statement the pipeline runs (SQLite's own work and the driver's, timed around each call).
``--random-ids`` sends random UUIDs as occurrence and event ids, as real clients do; by default
they are sequential, as in ``make bench``, which spares the unique indexes on them the random
page touches that real traffic costs.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from app.auth.principal import Principal
from app.config import Settings
from app.context import AppContext
from app.main import build_context, settle_collector
from app.occurrences.ingest import driver
from app.occurrences.ingest.journal import fold_if_due
from app.occurrences.ingest.usecase import ingest_requests
from bench.payload import occurrence
from bench.storage import migrated_sqlite

PER_REQUEST = 100
NEW_SHARE = 10  # one occurrence in ten opens an issue


def bodies(
    round_no: int, occurrences: int, per_request: int = PER_REQUEST, *, random_ids: bool = False
) -> list[bytes]:
    """The batch bodies of one round: fresh fingerprints, each used ten times, shuffled."""
    rng = random.Random(round_no)
    fps = [f"cpu-{round_no}-{i}" for i in range(occurrences // NEW_SHARE)] * NEW_SHARE
    rng.shuffle(fps)
    base = occurrence()
    out = []
    for begin in range(0, len(fps), per_request):
        items = []
        for n, fp in enumerate(fps[begin : begin + per_request], start=begin):
            oid = uuid.uuid4().hex if random_ids else f"{round_no:08x}{n:024x}"
            event_id = uuid.uuid4().hex if random_ids else "e" + oid[1:]
            item = {**base, "id": oid, "fingerprint": [fp]}
            item["event"] = {**base["event"], "event_id": event_id}
            items.append(item)
        out.append(orjson.dumps({"occurrences": items}))
    return out


def _answer_item(status: int, body: dict[str, Any]) -> dict[str, Any]:
    if status < 400:
        return body
    err = body["error"]
    return {"status": status, **err}


def send(ctx: AppContext, principal: Principal, body: bytes) -> bytes:
    """One batch request's work without HTTP: parse, ingest, serialise the answer."""
    items = orjson.loads(body)["occurrences"]
    [results] = ingest_requests(ctx, [(items, principal)])
    answer = orjson.dumps({"results": [_answer_item(r.status_code, r.body) for r in results]})
    fold_if_due(ctx)  # as the group-commit writer does after answering (ADR 0011)
    return answer


def run_round(ctx: AppContext, payloads: list[bytes]) -> tuple[float, float]:
    """CPU seconds (this thread, the process) of sending ``payloads`` (all must be accepted)."""
    principal = Principal.admin()
    start, start_process = time.thread_time(), time.process_time()
    answers = [send(ctx, principal, body) for body in payloads]
    spent = (time.thread_time() - start, time.process_time() - start_process)
    for answer in answers:
        for item in orjson.loads(answer)["results"]:
            if item.get("outcome") not in ("created", "grouped"):
                raise SystemExit(f"unexpected answer: {item}")
    return spent


@contextmanager
def timed_statements(ctx: AppContext, into: Counter[str], calls: Counter[str]) -> Iterator[None]:
    """Add the thread CPU (ns) of every pipeline statement to ``into``, by its first words.

    On SQLite every statement goes through ``fetch`` or ``execute_many`` (``execute_set`` calls
    the latter), except COPY, which is PostgreSQL's.
    """
    names = ("fetch", "execute_many")
    originals: dict[str, Callable[..., Any]] = {n: getattr(driver, n) for n in names}

    def timed(name: str) -> Callable[..., Any]:
        call = originals[name]

        def run(cur: Any, statement: str, *args: Any) -> Any:
            key = " ".join(statement.split()[:3])
            start = time.thread_time_ns()
            try:
                return call(cur, statement, *args)
            finally:
                into[key] += time.thread_time_ns() - start
                calls[key] += 1

        return run

    # The commit writes the transaction's pages to the WAL: timed through the dialect.
    dialect = ctx.db.write_engine.dialect
    commit = dialect.do_commit

    def timed_commit(dbapi_connection: Any) -> None:
        start = time.thread_time_ns()
        try:
            commit(dbapi_connection)
        finally:
            into["COMMIT"] += time.thread_time_ns() - start
            calls["COMMIT"] += 1

    # The pipeline's modules call these through the module (``driver.fetch``): patched there.
    for name in names:
        setattr(driver, name, timed(name))
    dialect.do_commit = timed_commit  # type: ignore[method-assign]
    try:
        yield
    finally:
        for name, call in originals.items():
            setattr(driver, name, call)
        del dialect.do_commit


def main() -> None:
    """Measure and print µs of CPU per occurrence (best of the rounds)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--occurrences", type=int, default=5_000, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--per-request",
        type=int,
        default=PER_REQUEST,
        help="occurrences per request, each request one transaction (1: the cost of small groups)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one more round")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--by-statement", action="store_true", help="CPU per occurrence of each kind of statement"
    )
    parser.add_argument(
        "--random-ids", action="store_true", help="random UUIDs as ids (default: sequential)"
    )
    args = parser.parse_args()

    def round_bodies(round_no: int, occurrences: int) -> list[bytes]:
        return bodies(round_no, occurrences, args.per_request, random_ids=args.random_ids)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cpu.db"
        migrated_sqlite(path)
        settings = Settings(
            database_url=f"sqlite:///{path}", data_dir=Path(tmp) / "data", admin_token="x" * 32
        )
        ctx = build_context(settings)
        ctx.db.start_checkpointer(settings.sqlite_checkpoint_seconds)
        # A warm-up round: statement caches, the registry, imports.
        run_round(ctx, round_bodies(999, 1_000))
        settle_collector()  # as serve does once started
        costs: list[tuple[float, float]] = []
        for round_no in range(args.rounds):
            spent = run_round(ctx, round_bodies(round_no, args.occurrences))
            costs.append((1e6 * spent[0] / args.occurrences, 1e6 * spent[1] / args.occurrences))
        for i, name in enumerate(("ingesting thread", "whole process")):
            each = sorted(c[i] for c in costs)
            listed = ", ".join(f"{c:.1f}" for c in each)
            print(f"CPU per occurrence, {name}: best {each[0]:.1f} µs (sorted rounds: {listed})")
        if args.by_statement:
            spent_ns: Counter[str] = Counter()
            calls: Counter[str] = Counter()
            payloads = round_bodies(args.rounds + 1, args.occurrences)
            with timed_statements(ctx, spent_ns, calls):
                run_round(ctx, payloads)
            print("CPU per occurrence by statement (one more round; calls in that round):")
            for key, ns in spent_ns.most_common():
                print(f"  {ns / 1e3 / args.occurrences:6.2f} µs  {calls[key]:6d}  {key} …")
            print(f"  {sum(spent_ns.values()) / 1e3 / args.occurrences:6.2f} µs  in all")
        if args.profile:
            payloads = round_bodies(args.rounds, args.occurrences)
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            run_round(ctx, payloads)
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
        ctx.db.dispose()


if __name__ == "__main__":
    main()
