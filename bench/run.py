"""``python -m bench.run [--quick] [--profile]``: measure, print a table, write the docs."""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import psycopg

from app.auth.principal import hash_token
from bench import fill, ratios, report, storage
from bench.loadgen import GetRun, PostRun, RateRun, ensure_wrk, fixed_rate, wrk_get, wrk_post
from bench.payload import occurrence
from bench.server import (
    LOADGEN_CPUS,
    SERVER_CPUS,
    Server,
    create_pg_database,
    drop_pg_database,
    pin_postgres,
    restore_postgres,
    start_ceiling,
    start_service,
)
from bench.sizes import FULL, POOL, QUICK, Row, Size

ROOT = Path(__file__).resolve().parent.parent
WORK = fill.RESULTS / "work"
SINGLE_CONNECTIONS = 32
BATCH_CONNECTIONS = 8
BATCH = 100
PREFILL_SEED = 10_000  # ids of the storage prefill differ from those of the timed runs
ADMIN = "bench-admin-" + uuid.uuid4().hex


def log(message: str) -> None:
    """Progress on stdout."""
    print(message, flush=True)


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return float(statistics.median(values))


def _counts(url: str | None, data_dir: Path) -> tuple[int, int]:
    """Stored occurrences and times seen (sum(times_seen) plus the counter journal's pending)."""
    queries = (
        "SELECT count(*) FROM occurrences",
        "SELECT coalesce(sum(times_seen), 0) FROM groups",
    )
    pending = "SELECT entries FROM counter_journal"
    if url is None:
        with sqlite3.connect(data_dir / "issue_platform.db") as conn:
            stored, seen = (int(conn.execute(q).fetchone()[0]) for q in queries)
            rows = conn.execute(pending).fetchall()
    else:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as pg:
            stored, seen = (int(pg.execute(q).fetchone()[0]) for q in queries)  # type: ignore[index]
            rows = pg.execute(pending).fetchall()
    # A journal entry is [issue id, occurrences counted, ...] (app/occurrences/ingest/journal.py).
    seen += sum(e[1] for (entries,) in rows for e in orjson.loads(entries))
    return stored, seen


def _warm_up(server: Server) -> int:
    """Create the issue of every pool fingerprint once (batches), so runs measure grouping."""
    accepted = 0
    with httpx.Client(base_url=server.base, timeout=120) as client:
        for start in range(0, POOL, BATCH):
            items = [occurrence(fingerprint=f"bench-fp-{i}") for i in range(start, start + BATCH)]
            answer = client.post(
                "/occurrences/batch",
                json={"occurrences": items},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            answer.raise_for_status()
            accepted += sum(
                r.get("outcome") in ("created", "grouped") for r in answer.json()["results"]
            )
    return accepted


def _post_runs(server: Server, size: Size, *, batch: int, reps: int | None = None) -> list[PostRun]:
    connections = BATCH_CONNECTIONS if batch else SINGLE_CONNECTIONS
    runs = []
    for _ in range(reps or size.reps):
        run = wrk_post(
            base=server.base,
            token=ADMIN,
            connections=connections,
            seconds=size.seconds,
            batch=batch,
            pool=POOL,
            work=WORK,
        )
        if run.errors or run.accepted != run.answers * (batch or 1):
            log(f"    note: {run.errors} errors, {run.answers} answers, {run.accepted} accepted")
        runs.append(run)
    return runs


def _verify(label: str, before: tuple[int, int], after: tuple[int, int], accepted: int) -> None:
    stored, seen = after[0] - before[0], after[1] - before[1]
    if not stored == seen == accepted:
        raise SystemExit(
            f"FAILED CHECK [{label}]: {stored} occurrences stored, times_seen grew by {seen}, "
            f"but {accepted} were answered as accepted"
        )
    log(f"    check ok: {stored} stored == {seen} times_seen == {accepted} accepted")


def _row(scenario: str, runs: list[PostRun], rss: list[int]) -> Row:
    return Row(
        scenario=scenario,
        rate=median([r.rate for r in runs]),
        p50=median([r.p50_ms for r in runs]),
        p99=median([r.p99_ms for r in runs]),
        rss_mb=max(rss) / 2**20 if rss else None,
        runs=[r.rate for r in runs],
    )


def _ceiling_row(runs: list[PostRun], rss: list[int]) -> Row:
    row = _row("HTTP ceiling: POST, orjson parse, 202", runs, rss)
    log(f"    HTTP ceiling: {row.rate:.0f} req/s (runs alternated with the single POSTs)")
    return row


def storage_limits(
    size: Size, *, sqlite_at: int, pg_at: int, sqlite100: list[float] | None = None
) -> dict[str, Row]:
    """Scenario 2: raw driver writes into the project's schema.

    The batch limits are measured at the table size the service's batch runs started from
    (``sqlite_at`` / ``pg_at`` stored occurrences, from the same pool of fingerprints), since a
    bigger table costs the storage engine more per row; the empty-table rate is shown beside it.
    ``sqlite100``: the SQLite per-100 rates, already measured by ``service`` in runs alternated
    with the SQLite 1-worker service's batch runs.
    """
    log("2. Storage limit (raw sqlite3 / psycopg into the migrated schema)")
    rows: dict[str, Row] = {}
    path = WORK / "storage.db"
    reps = range(1, size.reps + 1)

    def add(key: str, label: str, rates: list[float], n: int) -> None:
        rows[key] = Row(scenario=label, rate=median(rates), runs=rates)
        log(f"    {label}: {median(rates):.0f} occ/s ({n:,} occurrences per run)")

    singles = [storage.items(size.storage_single, POOL, s) for s in reps]
    single = [storage.sqlite_rate(path, todo, 1) for todo in singles]
    add("sqlite1", "SQLite raw, 1 txn per occurrence", single, size.storage_single)
    runs = [storage.items(size.storage_batch, POOL, s) for s in reps]
    if not sqlite100:
        prefill = storage.items(sqlite_at, POOL, PREFILL_SEED)
        sqlite100 = storage.sqlite_rates(path, prefill, runs, BATCH)
    add(
        "sqlite100",
        f"SQLite raw, 1 txn per 100, at {sqlite_at:,} stored",
        sqlite100,
        size.storage_batch,
    )
    empty = [storage.sqlite_rate(path, todo, BATCH) for todo in runs]
    add("sqlite100_empty", "SQLite raw, 1 txn per 100, empty table", empty, size.storage_batch)
    name, url = create_pg_database("storage")
    try:
        prefill = storage.items(pg_at, POOL, PREFILL_SEED)
        rates = storage.postgres_rates(url, prefill, runs, BATCH)
    finally:
        drop_pg_database(name)
    label = f"PostgreSQL raw, pipelined executemany per 100, at {pg_at:,} stored"
    add("pg100", label, rates, size.storage_batch)
    path.unlink(missing_ok=True)
    return rows


@dataclass
class ServiceRun:
    """What one service configuration measured."""

    rows: list[Row]
    fixed: RateRun | None
    # Stored occurrences when the batch runs began: the storage limit is measured at this size.
    batch_from: int
    # The HTTP ceiling, when its runs alternated with this configuration's single POSTs.
    ceiling: Row | None = None
    # The raw SQLite limit per 100 (scenario 2), when its runs alternated with the batches'.
    storage_rates: list[float] = field(default_factory=list)


def service(size: Size, *, engine: str, workers: int, with_ceiling: bool = False) -> ServiceRun:
    """Scenario 3: the real server, single POSTs then batches, verified against the database.

    ``with_ceiling`` (scenario 1): the HTTP ceiling app runs beside the service, and its runs
    alternate with the single-POST runs, so that the two rates of the single-POST ratio are
    measured seconds apart: this machine's speed moves by a third over minutes (ADR 0009,
    eighth pass), and measured minutes apart the ratio showed that drift, not the service.
    """
    label = f"{engine}, {workers} worker{'s' if workers > 1 else ''}"
    along = ", runs alternated with the HTTP ceiling's" if with_ceiling else ""
    log(f"3. Service on {label}{along}")
    data_dir = WORK / f"svc-{engine}-{workers}"
    shutil.rmtree(data_dir, ignore_errors=True)
    pg_name, url = create_pg_database("svc") if engine == "PostgreSQL" else (None, None)
    rows: list[Row] = []
    server = start_service(data_dir=data_dir, database_url=url, workers=workers, admin_token=ADMIN)
    top = start_ceiling(WORK) if with_ceiling else None
    ceiling_row = None
    raw_rates: list[float] = []
    try:
        before = _counts(url, data_dir)
        accepted = _warm_up(server)
        singles: list[PostRun] = []
        ceiling_runs: list[PostRun] = []
        for _ in range(size.reps):
            if top is not None:
                ceiling_runs += _post_runs(top, size, batch=0, reps=1)
            singles += _post_runs(server, size, batch=0, reps=1)
        if top is not None:
            ceiling_row = _ceiling_row(ceiling_runs, top.peak_rss())
            top.stop()
            top = None
        accepted += sum(r.accepted for r in singles)
        single_label = f"POST /occurrences, {label}, {SINGLE_CONNECTIONS} conns"
        rows.append(_row(single_label, singles, server.peak_rss()))
        log(f"    single: {rows[-1].rate:.0f} occ/s, p99 {rows[-1].p99:.1f} ms")
        fixed = None
        if engine == "SQLite" and workers == 1:
            target = 0.5 * (rows[-1].rate or 0)
            fixed = fixed_rate(
                port=server.port, token=ADMIN, rate=target, seconds=size.rate_seconds
            )
            accepted += fixed.accepted
            log(f"    fixed rate {target:.0f}/s: p50 {fixed.p50_ms:.1f}, p99 {fixed.p99_ms:.1f} ms")
        batch_from = _counts(url, data_dir)[0]
        batches: list[PostRun] = []
        raw = None
        if with_ceiling:
            # Scenario 2's SQLite limit per 100, at the size these batch runs start from, its
            # runs alternated with theirs (the comparison of the two is a target).
            raw = storage.SqliteRuns(
                WORK / "storage.db", storage.items(batch_from, POOL, PREFILL_SEED), BATCH
            )
        try:
            for rep in range(1, size.reps + 1):
                batches += _post_runs(server, size, batch=BATCH, reps=1)
                if raw is not None:
                    raw_rates.append(raw.run(storage.items(size.storage_batch, POOL, rep)))
        finally:
            if raw is not None:
                raw.close()
        accepted += sum(r.accepted for r in batches)
        rows.append(
            _row(f"POST /occurrences/batch x100, {label}, 8 conns", batches, server.peak_rss())
        )
        log(f"    batch: {rows[-1].rate:.0f} occ/s, p99 {rows[-1].p99:.1f} ms")
        _verify(label, before, _counts(url, data_dir), accepted)
    finally:
        if top is not None:
            top.stop()
        server.stop()
        if pg_name:
            drop_pg_database(pg_name)
    return ServiceRun(rows, fixed, batch_from, ceiling_row, raw_rates)


def _as_storage_items(work: ratios.Workload) -> list[storage.Item]:
    return [storage.Item(oid, "e" + oid[1:], fp, ratios._md5(fp)) for oid, fp in work.items]


def _ratio_service_runs(
    server: Server, url: str | None, data_dir: Path, work: ratios.Workload
) -> tuple[float, float]:
    """Accepted occurrences per second, and per CPU-second of the service's processes."""
    before = _counts(url, data_dir)
    payloads = ratios.bodies(work)
    cpu = ratios.cpu_seconds(server.worker_pids())
    run = ratios.post_all(server.port, ADMIN, payloads)
    cpu = ratios.cpu_seconds(server.worker_pids()) - cpu
    ratios.expect(run, work)
    ratios.check_counts(before, _counts(url, data_dir), run)
    return run.rate, run.accepted / max(cpu, 1e-9)


def issue_ratios(reps: int = 2) -> list[report.RatioRow]:
    """Scenario 6: batch ingest against the two-statement raw bound and the own-schema bound.

    Each service run is followed by the raw runs of a workload of the same shape, so the
    figures compared were measured a few seconds apart.
    """
    log("6. Ingest ratios: POST /occurrences/batch x100, 4 clients, fresh fingerprints")
    out: list[report.RatioRow] = []
    raw_path = WORK / "ratios-raw.db"
    own_path = WORK / "ratios-own.db"
    data_dir = WORK / "ratios-sqlite"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = start_service(data_dir=data_dir, database_url=None, workers=1, admin_token=ADMIN)
    try:
        _warm_up(server)
        for label, make, target in (
            ("20,000 over 2,000 fingerprints (10 % new), SQLite 1 worker", ratios.mixed, 0.35),
            ("10,000 each a new issue, SQLite 1 worker", ratios.all_new, 0.15),
        ):
            row = report.RatioRow(label, "two-statement raw sqlite3 bound", target)
            for rep in range(reps):
                rate, per_cpu = _ratio_service_runs(server, None, data_dir, make(rep))
                row.service.append(rate)
                row.service_cpu.append(per_cpu)
                row.raw.append(ratios.raw_sqlite(raw_path, make(rep)))
                row.raw_cpu.append(ratios.LAST_CPU_RATE[0])
                row.own.append(storage.sqlite_rate(own_path, _as_storage_items(make(rep)), BATCH))
            log(row.line())
            out.append(row)
    finally:
        server.stop()
    for path in (raw_path, own_path):
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    pg_name, url = create_pg_database("ratios")
    row = report.RatioRow(
        "20,000 over 2,000 fingerprints (10 % new), PostgreSQL 1 worker",
        "two-statement raw psycopg bound (pipelined)",
        0.35,
    )
    try:
        server = start_service(data_dir=data_dir, database_url=url, workers=1, admin_token=ADMIN)
        try:
            _warm_up(server)
            for rep in range(reps):
                row.service.append(_ratio_service_runs(server, url, data_dir, ratios.mixed(rep))[0])
                raw_name, raw_url = create_pg_database("raw")
                try:
                    raw = ratios.raw_postgres(ratios.pg_dsn(raw_url), ratios.mixed(rep))
                finally:
                    drop_pg_database(raw_name)
                row.raw.append(raw)
                own_name, own_url = create_pg_database("own")
                try:
                    items = _as_storage_items(ratios.mixed(rep))
                    row.own += storage.postgres_rates(own_url, [], [items], BATCH)
                finally:
                    drop_pg_database(own_name)
        finally:
            server.stop()
    finally:
        drop_pg_database(pg_name)
    log(row.line())
    out.append(row)
    shutil.rmtree(data_dir, ignore_errors=True)
    return out


def _add_key(db: Path) -> str:
    """An API key of organization 1 with the read scope, stored directly."""
    token = "bench-key-" + uuid.uuid4().hex
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO api_keys (organization_id, name, token_hash, scopes, project_ids, "
            "created_at) VALUES (1, 'bench', ?, '[\"read\"]', NULL, '2026-11-02 12:00:00.000000')",
            (hash_token(token),),
        )
    return token


def stream_and_growth(size: Size) -> tuple[list[Row], dict[str, Row]]:
    """Scenarios 4 and 5: GET /issues latency on the big database, then ingest at two sizes.

    Both servers run side by side and their batch runs alternate (small, big, small, …), so
    that a change in the machine's speed over the minutes of the scenario falls on both sizes
    alike instead of reading as an effect of the store's size (ADR 0009, eighth pass). Only one
    of them is under load at a time.
    """
    sources = {"small": fill.cached(*size.small), "big": fill.cached(*size.fill)}
    shapes = {"small": size.small, "big": size.fill}
    get_rows: list[Row] = []
    growth: dict[str, Row] = {}
    dirs = {key: WORK / f"growth-{key}" for key in sources}
    servers: dict[str, Server] = {}
    try:
        for key, source in sources.items():
            shutil.rmtree(dirs[key], ignore_errors=True)
            fill.copy_to(source, dirs[key])
            token = _add_key(dirs[key] / "issue_platform.db")
            servers[key] = start_service(
                data_dir=dirs[key], database_url=None, workers=1, admin_token=ADMIN
            )
            if key == "big":
                occ, issues = shapes[key]
                get_rows = _stream(servers[key], size, token, occ, issues)
        before = {key: _counts(None, dirs[key]) for key in servers}
        accepted = {key: _warm_up(server) for key, server in servers.items()}
        runs: dict[str, list[PostRun]] = {key: [] for key in servers}
        for _ in range(size.reps):
            for key, server in servers.items():
                runs[key] += _post_runs(server, size, batch=BATCH, reps=1)
        for key, server in servers.items():
            occ, issues = shapes[key]
            log(
                f"5. Ingest with {occ:,} occurrences / {issues:,} issues stored "
                "(SQLite, 1 worker; runs alternated between the two sizes)"
            )
            accepted[key] += sum(r.accepted for r in runs[key])
            growth[key] = _row(
                f"batch ingest at {occ:,} stored, SQLite, 1 worker", runs[key], server.peak_rss()
            )
            log(f"    {growth[key].rate:.0f} occ/s, peak RSS {growth[key].rss_mb:.0f} MB")
            _verify(f"growth {key}", before[key], _counts(None, dirs[key]), accepted[key])
    finally:
        for server in servers.values():
            server.stop()
        for data_dir in dirs.values():
            shutil.rmtree(data_dir, ignore_errors=True)
    return get_rows, growth


def _stream(server: Server, size: Size, key_token: str, occ: int, issues: int) -> list[Row]:
    log(f"4. GET /issues on {occ:,} occurrences / {issues:,} issues (SQLite, 1 worker, 1 conn)")
    first = httpx.get(
        server.base + "/issues?type=error",
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    ).json()
    cursor = first["next_cursor"]
    plans = [
        ("GET /issues?type=error, admin", "/issues?type=error", ADMIN),
        ("GET /issues?type=error, org API key", "/issues?type=error", key_token),
        ("GET /issues?type=error page 2 (cursor), admin", f"/issues?type=error&cursor={cursor}",
         ADMIN),
        ("GET /issues?type=replay_click_rage, admin", "/issues?type=replay_click_rage", ADMIN),
    ]  # fmt: skip
    rows = []
    for label, path, token in plans:
        # Warm the process (first compilation of each statement, SQLite page cache) so the
        # numbers describe the steady state, not the first request after start.
        for _ in range(20):
            httpx.get(server.base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        runs: list[GetRun] = []
        for _ in range(size.reps):
            run = wrk_get(base=server.base, path=path, token=token, seconds=size.get_seconds)
            if run.errors:
                raise SystemExit(f"FAILED CHECK [{label}]: {run.errors} errors")
            runs.append(run)
        row = Row(
            scenario=label,
            rate=median([r.requests / r.seconds for r in runs]),
            p50=median([r.p50_ms for r in runs]),
            p99=median([r.p99_ms for r in runs]),
        )
        rows.append(row)
        log(f"    {label}: p50 {row.p50:.1f} ms, p99 {row.p99:.1f} ms")
    return rows


def main() -> None:
    """Run every scenario once, print the table, write docs/benchmarks.md and .png."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 3 minutes, smaller database")
    parser.add_argument("--profile", action="store_true", help="only profile single POSTs")
    parser.add_argument(
        "--ratios", action="store_true", help="only the ingest ratios (scenario 6), printed"
    )
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    ensure_wrk()
    WORK.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {int(LOADGEN_CPUS)})
    if args.profile:
        from bench.profile import profile_single_post

        profile_single_post(WORK, ADMIN, POOL)
        return
    if args.ratios:
        old_pg = pin_postgres({int(SERVER_CPUS)})
        try:
            for row in issue_ratios():
                log(row.line())
        finally:
            if old_pg is not None:
                restore_postgres(old_pg)
        return
    began = time.monotonic()
    log(
        f"== bench: {size.name} size; service and PostgreSQL on core {SERVER_CPUS}, "
        f"load on core {LOADGEN_CPUS}"
    )
    if size is QUICK:
        log(f"== QUICK SIZE: {size.fill[0]:,} occurrences / {size.fill[1]:,} issues, not 1M / 100k")
    old_pg = pin_postgres({int(SERVER_CPUS)})
    try:
        result = report.Result(
            size=size.name, fill=size.fill, small=size.small, pg_pinned=old_pg is not None
        )
        runs: dict[tuple[str, int], ServiceRun] = {}
        for engine in ("SQLite", "PostgreSQL"):
            for workers in (1, 2):
                first = engine == "SQLite" and workers == 1
                run = runs[(engine, workers)] = service(
                    size, engine=engine, workers=workers, with_ceiling=first
                )
                if run.ceiling is not None:
                    result.ceiling = run.ceiling
                result.service[(engine, workers)] = run.rows
                if run.fixed is not None:
                    result.fixed = run.fixed
        result.storage_at = (runs[("SQLite", 1)].batch_from, runs[("PostgreSQL", 1)].batch_from)
        sqlite_at, pg_at = result.storage_at
        result.storage = storage_limits(
            size,
            sqlite_at=sqlite_at,
            pg_at=pg_at,
            sqlite100=runs[("SQLite", 1)].storage_rates,
        )
        result.stream, result.growth = stream_and_growth(size)
        result.ratios = issue_ratios()
    finally:
        if old_pg is not None:
            restore_postgres(old_pg)
    result.seconds = time.monotonic() - began
    report.publish(result, ROOT / "docs")
    if not result.all_pass():
        log("== some targets FAIL (see above); the measurements themselves are valid")


if __name__ == "__main__":
    main()
