"""Retention benchmark (`make bench-retention`): a cleanup pass under load, and the file size.

1. Fill an SQLite database (direct SQL, like bench/fill.py, but with events) with ROWS
   occurrences of project 2 spread over the 30 days before now; project 2 keeps 10 days.
2. Start `serve` on it (periodic jobs off), find its single-POST rate with wrk, then send
   occurrences of project 1 (kept 10 years: the pass leaves them alone) at half that rate with
   the fixed-rate client: once without a pass, then while a pass runs in this process (pinned
   to the server's core, as if `serve` ran it itself), in 5-second runs until the pass ends.
3. Two more fill-and-clean cycles without the server: each adds the next 20 days of
   occurrences (2/3 of ROWS) and runs a pass 20 days later, so every pass leaves 10 days.
   The database file size after each pass shows whether freed pages are reused.

`--auto-vacuum none` makes the database as a release before retention did (free pages are only
reused, never given back); the default is the service's own: incremental. `--quick` is a small
smoke run. Prints a Markdown section for docs/benchmarks-retention.md.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import random
import re
import shutil
import sqlite3
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.fill import RESULTS
from bench.loadgen import RateRun, fixed_rate, wrk_post
from bench.payload import occurrence
from bench.server import (
    SERVER_CPUS,
    VENV_BIN,
    Server,
    _spawn,
    _wait_ready,
    free_port,
    start_service,
)
from bench.storage import migrated_sqlite

WORK = RESULTS / "retention"
ADMIN = "bench-admin-" + uuid.uuid4().hex
PROJECT = 2
RETENTION_DAYS = 10
SPAN_DAYS = 30
CYCLE_DAYS = 20
DAILY_ISSUES = 700
LONG_ISSUES = 100
LONG_SHARE = 0.1
CHUNK = 50_000
# Filled issues are "ongoing": the periodic job that moves week-old "new" ones would otherwise
# rewrite them all while the pass is measured.
ONGOING = 3


def log(message: str) -> None:
    print(message, flush=True)


def _t(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass
class _Issue:
    first: datetime
    last: datetime
    count: int = 0
    latest: str = ""


@dataclass
class Filler:
    """Writes occurrences of project 2 (with their events, issues, hashes, hourly counts)."""

    path: Path
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    next_daily: int = LONG_ISSUES + 1
    serial: int = 0
    long_made: bool = False

    def __post_init__(self) -> None:
        body = occurrence()
        self.evidence = orjson.dumps(body["evidence_data"]).decode()
        self.display = orjson.dumps(body["evidence_display"]).decode()
        self.event = body["event"]

    def fill(self, start: datetime, days: float, rows: int) -> None:
        """``rows`` occurrences with detection times spread evenly over ``days`` from ``start``."""
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-500000")
        conn.execute("BEGIN")
        # Issues the server created meanwhile took ids too.
        largest = int(conn.execute("SELECT coalesce(max(id), 0) FROM groups").fetchone()[0])
        self.next_daily = max(self.next_daily, largest + 1)
        issues: dict[int, _Issue] = {}
        hourly: Counter[tuple[int, int]] = Counter()
        day_base: dict[int, int] = {}
        occs: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        span = timedelta(days=days)
        for i in range(rows):
            at = start + span * ((i + self.rng.random()) / rows)
            if self.rng.random() < LONG_SHARE:
                gid = 1 + self.rng.randrange(LONG_ISSUES)
            else:
                day = int((at - start) / timedelta(days=1))
                if day not in day_base:
                    day_base[day] = self.next_daily
                    self.next_daily += DAILY_ISSUES
                gid = day_base[day] + self.rng.randrange(DAILY_ISSUES)
            self.serial += 1
            oid = f"{self.serial:012x}{self.rng.getrandbits(80):020x}"
            issue = issues.get(gid)
            if issue is None:
                issue = issues[gid] = _Issue(at, at)
            issue.count += 1
            issue.last = max(issue.last, at)
            issue.first = min(issue.first, at)
            issue.latest = oid
            hourly[(gid, int(at.timestamp() // 3600))] += 1
            when = _t(at)
            occs.append(
                (PROJECT, oid, gid, 1, oid, f'["ret-fp-{gid}"]', f"Issue {gid}", "in handler",
                 "app.views.index", self.evidence, self.display, when, "warning", 50, when)
            )  # fmt: skip
            event = dict(self.event, event_id=oid, project_id=PROJECT)
            events.append((PROJECT, oid, orjson.dumps(event).decode(), when))
            if len(occs) >= CHUNK:
                self._flush(conn, occs, events)
                occs, events = [], []
        self._flush(conn, occs, events)
        self._issues(conn, issues)
        conn.executemany(
            "INSERT INTO hourly_counts (group_id, hour, count) VALUES (?, ?, ?) "
            "ON CONFLICT (group_id, hour) DO UPDATE SET count = count + excluded.count",
            [(g, h, c) for (g, h), c in hourly.items()],
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    @staticmethod
    def _flush(
        conn: sqlite3.Connection, occs: list[tuple[Any, ...]], events: list[tuple[Any, ...]]
    ) -> None:
        conn.executemany(
            "INSERT INTO occurrences (project_id, id, group_id, type_id, event_id, fingerprint, "
            "issue_title, subtitle, culprit, evidence_data, evidence_display, detection_time, "
            "level, priority, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            occs,
        )
        conn.executemany(
            "INSERT INTO events (project_id, event_id, data, received_at) VALUES (?, ?, ?, ?)",
            events,
        )

    def _issues(self, conn: sqlite3.Connection, issues: dict[int, _Issue]) -> None:
        new, known = [], []
        for gid, issue in issues.items():
            if gid <= LONG_ISSUES and self.long_made:
                known.append((_t(issue.last), issue.count, issue.latest, _t(issue.last), gid))
                continue
            digest = hashlib.md5(f"ret-fp-{gid}".encode(), usedforsecurity=False).hexdigest()
            first, last = _t(issue.first), _t(issue.last)
            new.append(
                (gid, PROJECT, 1, digest, gid, f"Issue {gid}", "in handler", "app.views.index",
                 "warning", 0, ONGOING, first, 50, 50, 0, first, last, issue.count, issue.latest,
                 last, 1, 1, first, last)
            )  # fmt: skip
        self.long_made = True
        conn.executemany(
            "INSERT INTO groups (id, project_id, type_id, hash, short_id, title, subtitle, "
            "culprit, level, status, substatus, substatus_changed_at, priority, "
            "initial_priority, priority_locked, first_seen, last_seen, times_seen, "
            "latest_occurrence_id, latest_detection_time, notify_created, version, created_at, "
            f"updated_at) VALUES ({', '.join('?' * 24)})",
            new,
        )
        conn.executemany(
            "INSERT INTO group_hashes (project_id, hash, group_id) VALUES (?, ?, ?)",
            [(PROJECT, row[3], row[0]) for row in new],
        )
        conn.executemany(
            "UPDATE groups SET last_seen = ?, times_seen = times_seen + ?, "
            "latest_occurrence_id = ?, latest_detection_time = ? WHERE id = ?",
            known,
        )
        conn.execute(
            "UPDATE projects SET next_short_id = ? WHERE id = ?", (self.next_daily + 1, PROJECT)
        )


def make_database(path: Path, auto_vacuum: str) -> None:
    """The migrated database with project 1 (kept 10 years) and project 2 (kept 10 days)."""
    migrated_sqlite(path)
    with sqlite3.connect(path, isolation_level=None) as conn:
        if auto_vacuum == "none":
            # As a database made before retention existed: VACUUM applies the mode.
            conn.execute("PRAGMA auto_vacuum=NONE")
            conn.execute("VACUUM")
        conn.execute("UPDATE projects SET retention_days = 3650 WHERE id = 1")
        conn.execute(
            "INSERT INTO projects (id, organization_id, slug, name, resolve_age_hours, "
            "next_short_id, created_at, retention_days) "
            f"VALUES (?, 1, 'ret', 'Retention', 0, 1, ?, {RETENTION_DAYS})",
            (PROJECT, _t(datetime.now(UTC))),
        )
        conn.execute("PRAGMA journal_mode=WAL")


def file_size(path: Path) -> int:
    """The database file's size once its WAL is checkpointed (and the WAL emptied)."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def pages(path: Path) -> tuple[int, int]:
    """(page_count, freelist_count)."""
    with sqlite3.connect(path) as conn:
        return (
            int(conn.execute("PRAGMA page_count").fetchone()[0]),
            int(conn.execute("PRAGMA freelist_count").fetchone()[0]),
        )


def project_occurrences(path: Path) -> int:
    """Occurrences of the filled project (an index range count)."""
    with sqlite3.connect(path, timeout=60) as conn:
        row = conn.execute("SELECT count(*) FROM occurrences WHERE project_id = ?", (PROJECT,))
        return int(row.fetchone()[0])


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608


@dataclass
class PassRun:
    seconds: float
    deleted: dict[str, int]
    vacuumed_pages: int
    batches: int
    slowest: float
    # The slowest transaction of each step (seconds), to tell which step holds ingest up.
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.deleted.values())


def run_cleanup(path: Path, shift: timedelta) -> PassRun:
    """One pass in this process, with the clock moved ``shift`` ahead."""
    from app.config import Settings
    from app.main import build_context
    from app.retention.service import run_pass

    settings = Settings(
        database_url=f"sqlite:///{path}",
        data_dir=WORK / "ctx-data",
        admin_token=ADMIN,
        run_jobs=False,
    )
    ctx = build_context(settings)
    ctx.clock = lambda: datetime.now(UTC) + shift
    ctx.db.start_checkpointer(settings.sqlite_checkpoint_seconds)
    try:
        result = run_pass(ctx)
    finally:
        ctx.db.dispose()
    return PassRun(
        result.seconds,
        result.deleted,
        result.vacuumed_pages,
        result.batches,
        result.slowest_batch_seconds,
        {name: st.slowest_seconds for name, st in getattr(result, "steps", {}).items()},
    )


def _pass_from_another_process(db: Path, port: int, rate: float, during: list[RateRun]) -> PassRun:
    """The pass in this process (on the server's core), ingest in 5 s runs until it ends."""
    box: list[PassRun] = []

    def cleaner() -> None:
        os.sched_setaffinity(0, {int(SERVER_CPUS)})
        box.append(run_cleanup(db, timedelta(0)))

    thread = threading.Thread(target=cleaner)
    thread.start()
    while thread.is_alive():
        during.append(fixed_rate(port=port, token=ADMIN, rate=rate, seconds=5.0))
    thread.join()
    return box[0]


def _serve_with_jobs(data_dir: Path) -> Server:
    """`serve` with its periodic jobs on: the first retention pass starts with the process."""
    env = {
        "ISSUE_PLATFORM_DATA_DIR": str(data_dir),
        "ISSUE_PLATFORM_ADMIN_TOKEN": ADMIN,
        "ISSUE_PLATFORM_RUN_JOBS": "true",
        "ISSUE_PLATFORM_JOBS_INTERVAL_SECONDS": "3600",
        "ISSUE_PLATFORM_RETENTION_INTERVAL_SECONDS": "3600",
    }
    os.environ.pop("ISSUE_PLATFORM_DATABASE_URL", None)
    (data_dir / "server.log").unlink(missing_ok=True)
    cmd = [str(VENV_BIN / "issue-platform"), "serve", "--port", str(free_port())]
    server = _spawn(cmd, env, data_dir / "server.log", SERVER_CPUS, 1)
    _wait_ready(server, "/readyz")
    return server


PASS_LINE = re.compile(
    r"retention: deleted (\{.*?\}) in ([0-9.]+) s \((\d+) batches, slowest ([0-9.]+) s; "
    r"(\d+) pages vacuumed\)(?:; slowest per step: (\{.*?\}))?"
)


def _pass_of_serve(
    server: Server, rate: float, during: list[RateRun], window: float, loaded: list[int]
) -> PassRun:
    """Ingest in 5 s runs until the server logs the end of its retention pass, for at most
    ``window`` seconds (``loaded``: project 2's occurrences at the start and end of it)."""
    db = server.log.parent / "issue_platform.db"
    loaded.append(project_occurrences(db))
    started = time.monotonic()
    while time.monotonic() - started < window:
        if PASS_LINE.search(server.log.read_text()):
            break
        during.append(fixed_rate(port=server.port, token=ADMIN, rate=rate, seconds=5.0))
    loaded.append(project_occurrences(db))
    loaded.append(int((time.monotonic() - started) * 1000))
    while True:
        found = PASS_LINE.search(server.log.read_text())
        if found:
            break
        time.sleep(1.0)
    deleted = ast.literal_eval(found.group(1))
    return PassRun(
        float(found.group(2)),
        {k: int(v) for k, v in deleted.items()},
        int(found.group(5)),
        int(found.group(3)),
        float(found.group(4)),
        ast.literal_eval(found.group(6)) if found.group(6) else {},
    )


def _median_run(runs: list[RateRun]) -> RateRun:
    """The runs as one: rates and counts added up, median latencies."""
    return RateRun(
        rate=statistics.mean(r.rate for r in runs),
        sent=sum(r.sent for r in runs),
        accepted=sum(r.accepted for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        late=sum(r.late for r in runs),
    )


def _ms(steps: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in steps.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 occurrences, short runs")
    parser.add_argument("--rows", type=int, default=None, help="occurrences of the first fill")
    parser.add_argument("--auto-vacuum", choices=("incremental", "none"), default="incremental")
    parser.add_argument("--skip-load", action="store_true", help="only the fill-and-clean cycles")
    parser.add_argument(
        "--cron",
        action="store_true",
        help="run the measured pass from another process (as `issue-platform cleanup` would), "
        "not as the periodic job of the server",
    )
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    measure_seconds = 15.0 if args.quick else 20.0
    # Ingest runs during the first part of the pass only (the runtime stays bounded).
    loaded_window = 30.0 if args.quick else 60.0
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    data_dir = WORK / "data"
    data_dir.mkdir()
    db = data_dir / "issue_platform.db"
    started = time.monotonic()
    log(f"load before: {Path('/proc/loadavg').read_text().strip()}")

    make_database(db, args.auto_vacuum)
    empty = file_size(db)
    now = datetime.now(UTC)
    filler = Filler(db)
    t0 = time.monotonic()
    filler.fill(now - timedelta(days=SPAN_DAYS), SPAN_DAYS, rows)
    fill_seconds = time.monotonic() - t0
    filled = file_size(db)
    per_occurrence = (filled - empty) / rows
    log(
        f"filled {rows:,} occurrences over {SPAN_DAYS} days in {fill_seconds:.0f} s: "
        f"{filled / 2**20:.0f} MiB, {per_occurrence:.0f} bytes per occurrence (all tables)"
    )

    baseline: RateRun | None = None
    loaded: list[int] = []
    during: list[RateRun] = []
    first: PassRun | None = None
    max_rate = 0.0
    if not args.skip_load:
        server = start_service(data_dir=data_dir, database_url=None, workers=1, admin_token=ADMIN)
        try:
            single = wrk_post(
                base=server.base, token=ADMIN, connections=64, seconds=measure_seconds,
                batch=0, pool=1000, work=WORK,
            )  # fmt: skip
            max_rate = single.rate
            target = max_rate / 2
            log(f"max single-POST rate {max_rate:.0f}/s (p99 {single.p99_ms:.1f} ms)")
            # 5 s runs, like those during the pass, and their median: on a shared machine one
            # run can be several times slower than the next.
            runs = [
                fixed_rate(port=server.port, token=ADMIN, rate=target, seconds=5.0)
                for _ in range(int(measure_seconds // 5))
            ]
            baseline = _median_run(runs)
            log(
                f"at {target:.0f}/s without a pass: p50 {baseline.p50_ms:.1f} ms, "
                f"p99 {baseline.p99_ms:.1f} ms (median of 5 s runs: "
                f"{[round(r.p99_ms, 1) for r in runs]} ms)"
            )
            load = Path("/proc/loadavg").read_text().strip()
            if args.cron:
                first = _pass_from_another_process(db, server.port, target, during)
            else:
                server.stop()
                server = _serve_with_jobs(data_dir)
                first = _pass_of_serve(server, target, during, loaded_window, loaded)
            log(
                f"pass during ingest ({'cron' if args.cron else 'serve'}): "
                f"{first.seconds:.1f} s, {first.rows:,} rows "
                f"({first.rows / first.seconds:,.0f}/s), {first.batches} batches, slowest "
                f"{first.slowest * 1000:.0f} ms (per step {_ms(first.steps)}); "
                f"ingest p99 per 5 s run: "
                f"{[round(r.p99_ms, 1) for r in during]} ms (load at start {load})"
            )
            if len(loaded) == 3:
                gone = loaded[0] - loaded[1]
                log(
                    f"under load: {gone:,} occurrences (about twice as many rows with their "
                    f"events) deleted in {loaded[2] / 1000:.0f} s"
                )
        finally:
            server.stop()
    else:
        first = run_cleanup(db, timedelta(0))
    assert first is not None
    sizes = [(file_size(db), pages(db), count(db, "occurrences"))]
    log(f"after pass 1: {sizes[-1][0] / 2**20:.0f} MiB, pages/free {sizes[-1][1]}")
    passes = [first]
    for cycle in (1, 2):
        start = now + timedelta(days=CYCLE_DAYS * (cycle - 1))
        filler.fill(start, CYCLE_DAYS, rows * CYCLE_DAYS // SPAN_DAYS)
        before = file_size(db)
        passes.append(run_cleanup(db, timedelta(days=CYCLE_DAYS * cycle)))
        sizes.append((file_size(db), pages(db), count(db, "occurrences")))
        log(
            f"cycle {cycle + 1}: filled to {before / 2**20:.0f} MiB; pass {passes[-1].seconds:.1f}"
            f" s, {passes[-1].rows:,} rows (slowest per step {_ms(passes[-1].steps)}); "
            f"after: {sizes[-1][0] / 2**20:.0f} MiB, "
            f"pages/free {sizes[-1][1]}, {sizes[-1][2]:,} occurrences left"
        )
    log(f"load after: {Path('/proc/loadavg').read_text().strip()}")
    log(f"total {time.monotonic() - started:.0f} s")
    report(
        rows=rows,
        auto_vacuum=args.auto_vacuum,
        per_occurrence=per_occurrence,
        max_rate=max_rate,
        baseline=baseline,
        during=during,
        passes=passes,
        sizes=[s for s, _, _ in sizes],
        filled=filled,
        loaded=loaded,
        mode="cron" if args.cron else "serve",
    )


def report(
    *,
    rows: int,
    auto_vacuum: str,
    per_occurrence: float,
    max_rate: float,
    baseline: RateRun | None,
    during: list[RateRun],
    passes: list[PassRun],
    sizes: list[int],
    filled: int,
    loaded: list[int],
    mode: str,
) -> None:
    first = passes[0]
    log("\n---- Markdown ----")
    log(
        f"Fill: {rows:,} occurrences over {SPAN_DAYS} days, retention {RETENTION_DAYS} days, "
        f"auto_vacuum={auto_vacuum}; {per_occurrence:.0f} bytes per occurrence stored "
        f"(occurrence, event, index entries, issues and counts), file {filled / 2**20:.0f} MiB."
    )
    log("")
    log("| measure | value |")
    log("|---|---|")
    log(f"| first pass | {first.seconds:.1f} s, {first.rows:,} rows, "
        f"{first.rows / first.seconds:,.0f} rows/s, {first.batches} batches, slowest "
        f"{first.slowest * 1000:.0f} ms |")  # fmt: skip
    if first.steps:
        log(f"| slowest transaction per step (first pass) | {_ms(first.steps)} |")
    log(f"| deleted | {', '.join(f'{k} {v:,}' for k, v in first.deleted.items() if v)} |")
    if baseline is not None and during:
        worst = max(r.p99_ms for r in during)
        median = statistics.median(r.p99_ms for r in during)
        log(f"| ingest | max {max_rate:,.0f}/s single POSTs; fixed rate {baseline.rate:,.0f}/s |")
        log(f"| ingest p99 without a pass | median of 5 s runs {baseline.p99_ms:.1f} ms "
            f"(p50 {baseline.p50_ms:.1f}) |")  # fmt: skip
        log(f"| ingest p99 during the pass ({mode}) | median of 5 s runs {median:.1f} ms "
            f"({median / baseline.p99_ms:.2f}x), worst {worst:.1f} ms "
            f"({worst / baseline.p99_ms:.2f}x), {len(during)} runs |")  # fmt: skip
    if len(loaded) == 3:
        gone, seconds = loaded[0] - loaded[1], loaded[2] / 1000
        log(f"| deleted while ingest ran | {gone:,} occurrences (and their events) in "
            f"{seconds:.0f} s: {gone / seconds:,.0f} occurrences/s |")  # fmt: skip
    for n, (size, run) in enumerate(zip(sizes, passes, strict=True), start=1):
        log(f"| file after pass {n} | {size / 2**20:,.0f} MiB (pass {run.seconds:.1f} s, "
            f"{run.rows:,} rows, {run.vacuumed_pages:,} pages given back) |")  # fmt: skip


if __name__ == "__main__":
    main()
