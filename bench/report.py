"""The result table, PASS/FAIL targets, docs/benchmarks.md and the chart."""

from __future__ import annotations

import importlib.metadata
import platform
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.sizes import FULL, POOL, QUICK, Row

if TYPE_CHECKING:
    from bench.loadgen import RateRun


@dataclass(frozen=True)
class Target:
    """One PASS/FAIL line."""

    name: str
    value: float | None
    limit: float
    higher_is_better: bool
    unit: str = "x"

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def line(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        shown = "n/a" if self.value is None else f"{self.value:.2f}{self.unit}"
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict}  {self.name}: {shown} (target {op} {self.limit:g}{self.unit})"


@dataclass
class RatioRow:
    """One ingest workload: the service and its two storage references, run by run."""

    workload: str
    reference: str
    target: float
    service: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    own: list[float] = field(default_factory=list)
    # Occurrences per CPU-second: the service's processes, and the raw bound's (SQLite only).
    service_cpu: list[float] = field(default_factory=list)
    raw_cpu: list[float] = field(default_factory=list)

    @staticmethod
    def _median(values: list[float]) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    @property
    def ratio(self) -> float | None:
        """The median of the per-run ratios (each run next to its own reference run)."""
        return self._median([s / r for s, r in zip(self.service, self.raw, strict=False) if r])

    @property
    def cpu_ratio(self) -> float | None:
        """The ratio per CPU-second (robust to other load on a shared machine)."""
        pairs = zip(self.service_cpu, self.raw_cpu, strict=False)
        return self._median([s / r for s, r in pairs if r])

    @property
    def own_ratio(self) -> float | None:
        return self._median([s / r for s, r in zip(self.service, self.own, strict=False) if r])

    def cells(self) -> list[str]:
        """The markdown table cells."""
        runs = " ".join(f"{v:.0f}" for v in self.service)
        return [
            self.workload,
            _num(self._median(self.service)),
            f"{_num(self._median(self.raw))} ({self.reference})",
            _num(self.ratio, 2),
            _num(self._median(self.own)),
            _num(self.own_ratio, 2),
            _num(self.cpu_ratio, 2),
            f">= {self.target:g}",
            runs,
        ]

    def line(self) -> str:
        """One progress line."""
        c = self.cells()
        return (
            f"    {c[0]}: {c[1]} occ/s; raw bound {c[2]} -> {c[3]}x; own-schema {c[4]} -> {c[5]}x"
        )


RATIO_HEADER = [
    "workload (batch x100, 4 clients)",
    "service occ/s",
    "raw bound occ/s",
    "ratio",
    "own-schema bound occ/s",
    "ratio",
    "ratio per CPU-second",
    "target",
    "service runs",
]


@dataclass
class Result:
    """Everything one bench run measured."""

    size: str
    fill: tuple[int, int]
    small: tuple[int, int]
    pg_pinned: bool
    ceiling: Row | None = None
    storage: dict[str, Row] = field(default_factory=dict)
    # Stored occurrences the storage limits per 100 were measured at: SQLite, PostgreSQL.
    storage_at: tuple[int, int] = (0, 0)
    service: dict[tuple[str, int], list[Row]] = field(default_factory=dict)
    fixed: RateRun | None = None
    stream: list[Row] = field(default_factory=list)
    growth: dict[str, Row] = field(default_factory=dict)
    ratios: list[RatioRow] = field(default_factory=list)
    seconds: float = 0.0

    def rows(self) -> list[Row]:
        """Table rows, with the reference each is compared with."""
        out: list[Row] = []
        if self.ceiling:
            out.append(self.ceiling)
        out += list(self.storage.values())
        for (engine, _workers), rows in self.service.items():
            single, batch = rows
            if self.ceiling:
                single.reference, single.reference_rate = "HTTP ceiling", self.ceiling.rate
            ref = self.storage.get("sqlite100" if engine == "SQLite" else "pg100")
            if ref:
                batch.reference, batch.reference_rate = ref.scenario, ref.rate
            out += rows
        if "small" in self.growth and "big" in self.growth:
            big = self.growth["big"]
            big.reference, big.reference_rate = "ingest at 10k stored", self.growth["small"].rate
            out += [self.growth["small"], big]
        out += self.stream
        return out

    def targets(self) -> list[Target]:
        """The targets of the brief."""
        sqlite1 = self.service.get(("SQLite", 1))
        pg1 = self.service.get(("PostgreSQL", 1))
        rss = [self.growth[k].rss_mb for k in ("small", "big") if k in self.growth]
        rss_growth = (rss[1] / rss[0] - 1) * 100 if len(rss) == 2 and rss[0] and rss[1] else None
        big = self.growth.get("big")
        worst_get = max((r.p99 or 0) for r in self.stream) if self.stream else None
        return [
            Target(
                "single POST SQLite 1 worker / HTTP ceiling",
                sqlite1[0].ratio if sqlite1 else None,
                0.6,
                True,
            ),
            Target(
                "batch SQLite 1 worker / storage limit (100 per txn)",
                sqlite1[1].ratio if sqlite1 else None,
                0.7,
                True,
            ),
            Target(
                "batch PostgreSQL 1 worker / storage limit",
                pg1[1].ratio if pg1 else None,
                0.6,
                True,
            ),
            Target(
                "p99 single POST at half the max rate (fixed-rate asyncio client)",
                self.fixed.p99_ms if self.fixed else None,
                10,
                False,
                " ms",
            ),
            Target("ingest at large store / at 10k stored", big.ratio if big else None, 0.8, True),
            Target("peak RSS growth per worker, large store vs 10k", rss_growth, 10, False, " %"),
            Target("GET /issues?type p99 (worst stream row)", worst_get, 20, False, " ms"),
            *[
                Target(f"batch {r.workload} / {r.reference}", r.ratio, r.target, True)
                for r in self.ratios
            ],
        ]

    def all_pass(self) -> bool:
        """Whether every target passes."""
        return all(t.passed for t in self.targets())


def _num(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


HEADER = ["scenario", "rate/s (median)", "p50 ms", "p99 ms", "vs", "ratio", "peak RSS MB", "runs"]


def table(result: Result) -> list[list[str]]:
    """The result table as strings."""
    body = []
    for r in result.rows():
        body.append(
            [
                r.scenario,
                _num(r.rate),
                _num(r.p50, 1),
                _num(r.p99, 1),
                r.reference,
                _num(r.ratio, 2),
                _num(r.rss_mb),
                " ".join(f"{x:.0f}" for x in r.runs),
            ]
        )
    if result.fixed:
        f = result.fixed
        body.append(
            [
                f"fixed-rate POST /occurrences at {f.rate:.0f}/s, SQLite 1 worker",
                _num(f.rate),
                _num(f.p50_ms, 1),
                _num(f.p99_ms, 1),
                "asyncio open loop",
                "",
                "",
                f"{f.accepted}/{f.sent} ok, {f.late} late",
            ]
        )
    return body


def _text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(HEADER, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _sh(cmd: str) -> str:
    try:
        return subprocess.run(
            cmd, shell=True, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "?"


def _pg_version() -> str:
    import psycopg

    try:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    except psycopg.Error:
        return "?"


def machine() -> list[str]:
    """Machine and versions, one markdown bullet each."""
    cpu = _sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    versions = ", ".join(
        f"{p} {importlib.metadata.version(p)}"
        for p in ("fastapi", "starlette", "uvicorn", "pydantic", "sqlalchemy", "psycopg", "orjson")
    )
    return [
        f"`nproc --all`: {_sh('nproc --all')}; CPU: {cpu}; kernel {platform.release()}",
        "`free -h`:\n\n```\n" + _sh("free -h") + "\n```\n",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"PostgreSQL {_pg_version()}, "
        f"{_sh('wrk -v 2>&1 | head -1').split(' Copyright')[0]}",
        versions,
        f"commit {_sh('git rev-parse --short HEAD')} ({_sh('git rev-parse --abbrev-ref HEAD')})",
    ]


def chart(result: Result, path: Path) -> bool:
    """Throughput of each scenario next to its ceiling (matplotlib, installed if missing)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("installing matplotlib into the venv for the chart", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=False)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib unavailable: no chart", flush=True)
        return False
    rows = [r for r in result.rows() if r.reference_rate]
    labels = [r.scenario.replace(", ", "\n", 1) for r in rows]
    fig, ax = plt.subplots(figsize=(11, 0.9 * len(rows) + 1.5))
    ys = range(len(rows))
    ax.barh(
        [y + 0.2 for y in ys],
        [r.reference_rate or 0 for r in rows],
        0.4,
        label="ceiling / limit",
        color="#bbbbbb",
    )
    ax.barh(
        [y - 0.2 for y in ys], [r.rate or 0 for r in rows], 0.4, label="measured", color="#3b6fb6"
    )
    for y, r in zip(ys, rows, strict=True):
        ax.text((r.rate or 0), y - 0.2, f" {r.rate:,.0f} ({r.ratio:.2f}x)", va="center", fontsize=8)
        ax.text(
            (r.reference_rate or 0),
            y + 0.2,
            f" {r.reference}",
            va="center",
            fontsize=7,
            color="#555555",
        )
    # Room on the right for the reference labels (they name the table size, so they are long).
    ax.set_xlim(0, 1.45 * max(max(r.rate or 0, r.reference_rate or 0) for r in rows))
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("occurrences per second (median)")
    ax.set_title(f"Issue Platform ingest throughput vs ceiling ({result.size} run)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


METHOD = """\
## How it is measured

- **Load**: wrk with `bench/post.lua`, one connection per wrk thread; each thread stops itself
  after the run time once its last answer is in, so nothing is in flight when wrk exits.
  Occurrence ids are `<run prefix><thread><counter>` (unique); fingerprints are drawn from a pool
  of {pool} (type `error`, no noise window), whose issues are created by a warm-up batch first,
  so the runs measure grouping into existing issues. Rate = accepted occurrences / wall time
  from the first send to the last answer. p50/p99 are wrk's, per request (a batch is one
  request). Medians of {reps} runs of {seconds:g} s.
- **Check**: after every scenario, stored occurrences == growth of sum(groups.times_seen) plus
  the counts waiting in the counter journal (ADR 0011) == occurrences answered as accepted
  (202s counted by a Lua `response()` hook; for batches the `created`/`grouped` items). A
  mismatch aborts the run.
- **Pinning**: the server (and PostgreSQL: {pg}) on core 0, wrk and the bench on core 1. With
  2 workers the service gets both cores, so it shares core 1 with wrk: on this 2-core machine
  the 2-worker rows show contention, not scaling.
- **HTTP ceiling**: `bench/ceiling_app.py`, FastAPI + uvicorn with the service's settings, reads
  the same {body}-byte body, parses it with orjson and answers 202; the same wrk client (32
  connections) as the service's single POSTs. It runs beside the SQLite 1-worker service and
  its runs alternate with that service's single-POST runs (ceiling, service, ceiling, …), so
  the two rates of the single-POST ratio are measured seconds apart, not minutes.
- **Ingest ratios** (`bench/ratios.py`): `POST /occurrences/batch`, 100 per request, 4 keep-alive
  clients (asyncio, bodies serialised beforehand), 20,000 occurrences over 2,000 fingerprints
  never seen before (so 10 % open an issue), and 10,000 occurrences each a new issue; every run
  checks outcomes and stored counts. The **two-statement raw bound** is raw `sqlite3` (WAL,
  synchronous=NORMAL) or psycopg (pipelined `executemany`) on a minimal two-table schema: per
  occurrence one `INSERT … ON CONFLICT (project_id, hash) DO UPDATE … RETURNING id` and one
  occurrence insert with the JSON columns serialised beforehand, 100 per transaction, fresh
  tables. The **own-schema bound** is `bench/storage.py` (below) on the same workload.
- **Storage limit**: raw `sqlite3` (WAL, synchronous=NORMAL, like the service) and psycopg 3
  (pipelined `executemany`) into the migrated schema: occurrence row, issue upsert, group_hash,
  hourly count — no event row, no validation, no HTTP. The per-100 limits are measured at the
  table size the service's batch runs started from ({sqlite_at:,} stored on SQLite, {pg_at:,} on
  PostgreSQL, filled untimed from the same fingerprint pool), the runs following one another as
  the service's do; on SQLite they alternate with the 1-worker service's batch runs (service,
  raw, service, …). A bigger table costs the engine more per row, so the empty-table rate
  (SQLite) is shown beside it for comparison. Per occurrence: 1 txn each, on an empty table.
- **Fixed rate**: an open-loop asyncio client (`bench/loadgen.py`, raw HTTP/1.1 on 64
  keep-alive connections) sends at half the measured single-POST rate; latency is measured from
  the scheduled send time, so queueing is not hidden (wrk2 is not in Debian).
- **Issue stream**: `bench/fill.py` fills the schema with raw SQL ({fill_occ:,} occurrences,
  {fill_issues:,} issues over 7 types, 4 projects in 2 organizations, 30 days, ~10 occurrences
  per issue with a long tail), cached under `bench/results/`. One connection, back to back.
- **Growth**: batch ingest into copies of a {small_occ:,}- and a {fill_occ:,}-occurrence database,
  one server each, both running; their runs alternate (small, large, small, …), so a change in
  the machine's speed over the scenario falls on both sizes alike. RSS is VmHWM of the worker.
"""


def publish(result: Result, docs: Path) -> None:
    """Print the table and targets; write docs/benchmarks.md and docs/benchmarks.png."""
    from bench.payload import template

    rows = table(result)
    targets = result.targets()
    print("\n" + _text_table(rows) + "\n", flush=True)
    for t in targets:
        print(t.line(), flush=True)
    if result.size == "quick":
        print(f"(QUICK size: {result.fill[0]:,} occurrences / {result.fill[1]:,} issues)")
    has_chart = chart(result, docs / "benchmarks.png")
    size = QUICK if result.size == "quick" else FULL
    md = [
        "# Benchmarks",
        "",
        f"Produced by `python -m bench.run{' --quick' if result.size == 'quick' else ''}` "
        f"({'make bench' if result.size == 'quick' else 'make bench-full'}) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {result.seconds:.0f} s. "
        + (
            f"**Quick size**: the stream database has {result.fill[0]:,} occurrences and "
            f"{result.fill[1]:,} issues (the full run uses 1,000,000 / 100,000)."
            if result.size == "quick"
            else ""
        ),
        "",
        "## Machine",
        "",
        *[f"- {m}" for m in machine()],
        "## Results",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *["| " + " | ".join(r) + " |" for r in rows],
        "",
        *(
            [
                "## Ingest ratios",
                "",
                "Each service run is followed by the raw runs of a same-shaped workload; the ratio",
                "is the median of the per-run ratios.",
                "",
                "| " + " | ".join(RATIO_HEADER) + " |",
                "|" + "---|" * len(RATIO_HEADER),
                *["| " + " | ".join(r.cells()) + " |" for r in result.ratios],
                "",
            ]
            if result.ratios
            else []
        ),
        "## Targets",
        "",
        *[f"- {t.line()}" for t in targets],
        "",
        *(["![throughput next to its ceiling](benchmarks.png)", ""] if has_chart else []),
        METHOD.format(
            pool=POOL,
            reps=size.reps,
            seconds=size.seconds,
            pg="pinned" if result.pg_pinned else "could not be pinned",
            body=len(template()),
            fill_occ=result.fill[0],
            fill_issues=result.fill[1],
            small_occ=result.small[0],
            sqlite_at=result.storage_at[0],
            pg_at=result.storage_at[1],
        ),
        "Other engineers' jobs may share this machine: compare runs made close together.",
        "",
    ]
    (docs / "benchmarks.md").write_text("\n".join(md))
    print(
        f"wrote {docs / 'benchmarks.md'}" + (f" and {docs / 'benchmarks.png'}" if has_chart else "")
    )
