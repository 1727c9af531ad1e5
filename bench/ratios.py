"""The ingest ratios: the service against the least work that stores an occurrence.

References, each measured in the same run as the figure it is compared with:

- **two-statement raw bound**: raw ``sqlite3`` (or psycopg, pipelined) on a minimal schema, per
  occurrence one issue upsert ``INSERT … ON CONFLICT (project_id, hash) DO UPDATE … RETURNING id``
  and one occurrence insert with its JSON columns serialised beforehand, 100 per transaction;
- **bare HTTP ceiling**: ``bench/ceiling_app.py`` (FastAPI + uvicorn, reads the body, parses it
  with orjson, answers 202) with the same wrk client as the service's single POSTs;
- **own-schema bound** (``bench/storage.py``): today's schema and statements, for comparison.

Workloads of the service (SQLite 1 worker, PostgreSQL 1 worker): ``POST /occurrences/batch``,
100 per request, 4 clients, 20,000 occurrences over 2,000 fresh fingerprints (so 10 % open a new
issue); and 10,000 occurrences, each a new fingerprint.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg

from bench.payload import occurrence

CLIENTS = 4
# Occurrences per CPU-second of the last raw_sqlite run (this process's CPU time only).
LAST_CPU_RATE = [0.0]
PER_REQUEST = 100
MIXED = (20_000, 2_000)  # occurrences, fingerprints
ALL_NEW = 10_000
DETECTED = "2026-11-02 11:00:00.000000"

MINIMAL_SQLITE = (
    "CREATE TABLE issues (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, "
    "hash TEXT NOT NULL, title TEXT NOT NULL, times_seen INTEGER NOT NULL, "
    "first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, UNIQUE (project_id, hash))",
    "CREATE TABLE occurrences (project_id INTEGER NOT NULL, id TEXT NOT NULL, "
    "issue_id INTEGER NOT NULL, fingerprint TEXT NOT NULL, title TEXT NOT NULL, "
    "subtitle TEXT NOT NULL, culprit TEXT NOT NULL, evidence_data TEXT NOT NULL, "
    "evidence_display TEXT NOT NULL, event TEXT NOT NULL, detection_time TEXT NOT NULL, "
    "level TEXT NOT NULL, PRIMARY KEY (project_id, id))",
)
MINIMAL_PG = (
    "CREATE TABLE issues (id BIGSERIAL PRIMARY KEY, project_id BIGINT NOT NULL, "
    "hash VARCHAR(32) NOT NULL, title TEXT NOT NULL, times_seen BIGINT NOT NULL, "
    "first_seen TIMESTAMPTZ NOT NULL, last_seen TIMESTAMPTZ NOT NULL, UNIQUE (project_id, hash))",
    "CREATE TABLE occurrences (project_id BIGINT NOT NULL, id VARCHAR(32) NOT NULL, "
    "issue_id BIGINT NOT NULL, fingerprint JSONB NOT NULL, title TEXT NOT NULL, "
    "subtitle TEXT NOT NULL, culprit TEXT NOT NULL, evidence_data JSONB NOT NULL, "
    "evidence_display JSONB NOT NULL, event JSONB NOT NULL, detection_time TIMESTAMPTZ NOT NULL, "
    "level VARCHAR(8) NOT NULL, PRIMARY KEY (project_id, id))",
)
UPSERT = (
    "INSERT INTO issues (project_id, hash, title, times_seen, first_seen, last_seen) "
    "VALUES (1, {p}, {p}, 1, {p}, {p}) ON CONFLICT (project_id, hash) DO UPDATE SET "
    "times_seen = issues.times_seen + 1, last_seen = excluded.last_seen RETURNING id"
)
INSERT = (
    "INSERT INTO occurrences (project_id, id, issue_id, fingerprint, title, subtitle, culprit, "
    "evidence_data, evidence_display, event, detection_time, level) "
    "VALUES (1, {p}, {p}, {j}, {p}, {p}, {p}, {j}, {j}, {j}, {p}, {p})"
)


@dataclass(frozen=True)
class Workload:
    """The occurrences of one timed run: (id, fingerprint) pairs in sending order."""

    name: str
    items: list[tuple[str, str]]

    @property
    def new_issues(self) -> int:
        return len({fp for _, fp in self.items})


def mixed(seed: int) -> Workload:
    """20,000 occurrences over 2,000 fingerprints never seen before (each one appears)."""
    n, pool = MIXED
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    fps = [f"mix-{run}-{i}" for i in range(pool)] * (n // pool)
    rng.shuffle(fps)
    return Workload("mixed", [(f"{run}{i:024x}", fp) for i, fp in enumerate(fps)])


def all_new(seed: int) -> Workload:
    """10,000 occurrences, each with its own new fingerprint."""
    run = uuid.uuid4().hex[:8]
    del seed
    return Workload("all-new", [(f"{run}{i:024x}", f"new-{run}-{i}") for i in range(ALL_NEW)])


_BODY = occurrence()


def _row_values(oid: str, fp: str) -> tuple[str, ...]:
    """An occurrence's minimal-schema values, JSON already serialised."""
    body = _BODY
    event = {**body["event"], "event_id": "e" + oid[1:]}
    return (
        oid,
        orjson.dumps([fp]).decode(),
        body["issue_title"],
        body["subtitle"],
        body["culprit"],
        orjson.dumps(body["evidence_data"]).decode(),
        orjson.dumps(body["evidence_display"]).decode(),
        orjson.dumps(event).decode(),
        body["level"],
    )


def _md5(fp: str) -> str:
    import hashlib

    return hashlib.md5(fp.encode(), usedforsecurity=False).hexdigest()


def raw_sqlite(path: Path, work: Workload) -> float:
    """Occurrences per second of the two-statement bound on SQLite (fresh file, WAL, NORMAL)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for ddl in MINIMAL_SQLITE:
        conn.execute(ddl)
    upsert = UPSERT.format(p="?")
    insert = INSERT.format(p="?", j="?")
    prepared = [(_md5(fp), _row_values(oid, fp)) for oid, fp in work.items]
    start = time.perf_counter()
    cpu = time.process_time()
    for begin in range(0, len(prepared), PER_REQUEST):
        conn.execute("BEGIN IMMEDIATE")
        for digest, v in prepared[begin : begin + PER_REQUEST]:
            issue_id = conn.execute(upsert, (digest, v[2], DETECTED, DETECTED)).fetchone()[0]
            conn.execute(insert, (v[0], issue_id, *v[1:8], DETECTED, v[8]))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    LAST_CPU_RATE[0] = len(work.items) / max(time.process_time() - cpu, 1e-9)
    stored = conn.execute("SELECT count(*), (SELECT sum(times_seen) FROM issues) FROM occurrences")
    assert stored.fetchone() == (len(work.items), len(work.items))
    conn.close()
    return len(work.items) / elapsed


def raw_postgres(dsn: str, work: Workload) -> float:
    """The two-statement bound on PostgreSQL: psycopg pipeline, 100 per transaction.

    ``dsn`` names a scratch database of its own: the tables are created and dropped here.
    """
    upsert = UPSERT.format(p="%s")
    insert = INSERT.format(p="%s", j="CAST(%s AS jsonb)")
    detected = "2026-11-02T11:00:00+00:00"
    prepared = [(_md5(fp), _row_values(oid, fp)) for oid, fp in work.items]
    with psycopg.connect(dsn) as conn:
        for ddl in ("DROP TABLE IF EXISTS issues, occurrences", *MINIMAL_PG):
            conn.execute(ddl)
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur:
            for begin in range(0, len(prepared), PER_REQUEST):
                chunk = prepared[begin : begin + PER_REQUEST]
                cur.executemany(
                    upsert, [(d, v[2], detected, detected) for d, v in chunk], returning=True
                )
                ids = []
                while True:
                    ids.append(cur.fetchone()[0])  # type: ignore[index]
                    if not cur.nextset():
                        break
                cur.executemany(
                    insert,
                    [
                        (v[0], i, *v[1:8], detected, v[8])
                        for (_, v), i in zip(chunk, ids, strict=True)
                    ],
                )
                conn.commit()
        elapsed = time.perf_counter() - start
        row = conn.execute("SELECT count(*), (SELECT sum(times_seen) FROM issues) FROM occurrences")
        assert tuple(row.fetchone() or ()) == (len(work.items), len(work.items))
        conn.execute("DROP TABLE issues, occurrences")
        conn.commit()
    return len(work.items) / elapsed


def bodies(work: Workload) -> list[bytes]:
    """The batch bodies of a workload, 100 occurrences each, serialised beforehand."""
    base = occurrence()
    out = []
    for begin in range(0, len(work.items), PER_REQUEST):
        items = []
        for oid, fp in work.items[begin : begin + PER_REQUEST]:
            item = {**base, "id": oid, "fingerprint": [fp]}
            item["event"] = {**base["event"], "event_id": "e" + oid[1:]}
            items.append(item)
        out.append(orjson.dumps({"occurrences": items}))
    return out


@dataclass(frozen=True)
class ClientRun:
    """What one client run saw: accepted items by outcome and the wall time."""

    elapsed: float
    outcomes: dict[str, int]
    errors: int

    @property
    def accepted(self) -> int:
        return sum(n for k, n in self.outcomes.items() if k in ("created", "grouped"))

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed


async def _post_all(port: int, token: str, payloads: list[bytes], clients: int) -> ClientRun:
    todo: asyncio.Queue[bytes] = asyncio.Queue()
    for p in payloads:
        todo.put_nowait(p)
    outcomes: dict[str, int] = {}
    errors = 0

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not todo.empty():
            body = todo.get_nowait()
            head = (
                f"POST /occurrences/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            writer.write(head + body)
            await writer.drain()
            header = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            answer = await reader.readexactly(length)
            if header[9:12] != b"200":
                errors += 1
                continue
            for r in orjson.loads(answer)["results"]:
                key = r.get("outcome") or "rejected"
                outcomes[key] = outcomes.get(key, 0) + 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return ClientRun(time.perf_counter() - start, outcomes, errors)


def post_all(port: int, token: str, payloads: list[bytes], clients: int = CLIENTS) -> ClientRun:
    """Send every payload over ``clients`` keep-alive connections; answers counted by outcome."""
    import uvloop

    return uvloop.run(_post_all(port, token, payloads, clients))


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def describe(values: list[float]) -> str:
    """Runs as whole numbers."""
    return " ".join(f"{v:.0f}" for v in values)


def check_counts(before: tuple[int, int], after: tuple[int, int], run: ClientRun) -> None:
    """Stored occurrences == growth of times_seen == accepted answers, else abort."""
    stored, seen = after[0] - before[0], after[1] - before[1]
    if not stored == seen == run.accepted or run.errors:
        raise SystemExit(
            f"FAILED CHECK [ratios]: {stored} stored, times_seen +{seen}, "
            f"{run.accepted} accepted, {run.errors} errors ({run.outcomes})"
        )


def expect(run: ClientRun, work: Workload) -> None:
    """Every occurrence accepted, and exactly one new issue per new fingerprint."""
    created = run.outcomes.get("created", 0)
    if run.accepted != len(work.items) or created != work.new_issues:
        raise SystemExit(
            f"FAILED CHECK [ratios {work.name}]: {run.outcomes}, "
            f"expected {len(work.items)} accepted and {work.new_issues} created"
        )


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes (from /proc), in seconds."""
    import os

    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def pg_dsn(url: str) -> str:
    """The psycopg DSN of a SQLAlchemy URL."""
    return url.replace("postgresql+psycopg://", "postgresql://")
