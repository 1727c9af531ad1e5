"""The storage limit: the minimum rows an ingest writes, through raw driver calls.

Per occurrence: the occurrence row, the issue upsert (times_seen, last_seen), its group_hash and
the hourly count, into the project's own migrated schema.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psycopg

from app.migrations import upgrade
from bench.payload import occurrence

DETECTED = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
HOUR = int(DETECTED.timestamp() // 3600)
SQLITE_TIME = DETECTED.strftime("%Y-%m-%d %H:%M:%S.%f")

GROUP_UPSERT = """
INSERT INTO groups (project_id, type_id, hash, short_id, title, subtitle, culprit, level, status,
    substatus, substatus_changed_at, priority, initial_priority, priority_locked, first_seen,
    last_seen, times_seen, latest_occurrence_id, latest_detection_time, notify_created, version,
    created_at, updated_at)
VALUES (1, 1, {p}, {p}, {p}, {p}, {p}, 'warning', 0, 7, {p}, 50, 50, false, {p}, {p}, {p}, {p},
    {p}, true, 1, {p}, {p})
ON CONFLICT (project_id, hash) DO UPDATE SET times_seen = groups.times_seen + excluded.times_seen,
    last_seen = excluded.last_seen, latest_occurrence_id = excluded.latest_occurrence_id,
    updated_at = excluded.updated_at
RETURNING id
"""
HASH_INSERT = (
    "INSERT INTO group_hashes (project_id, hash, group_id) VALUES (1, {p}, {p}) "
    "ON CONFLICT DO NOTHING"
)
OCC_INSERT = """
INSERT INTO occurrences (project_id, id, group_id, type_id, event_id, fingerprint, issue_title,
    subtitle, culprit, resource_id, evidence_data, evidence_display, detection_time, level,
    priority, received_at)
VALUES (1, {p}, {p}, 1, {p}, {p}, {p}, {p}, {p}, NULL, {p}, {p}, {p}, 'warning', 50, {p})
"""
COUNT_UPSERT = (
    "INSERT INTO hourly_counts (group_id, hour, count) VALUES ({p}, {p}, {p}) "
    "ON CONFLICT (group_id, hour) DO UPDATE SET count = hourly_counts.count + excluded.count"
)


@dataclass(frozen=True)
class Item:
    """One occurrence to store."""

    id: str
    event_id: str
    fingerprint: str
    hash: str


def items(n: int, pool: int, seed: int) -> list[Item]:
    """``n`` occurrences with unique ids and fingerprints from a pool."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        fp = f"bench-fp-{rng.randrange(pool)}"
        oid = f"{seed:012x}{i:020x}"
        digest = hashlib.md5(fp.encode(), usedforsecurity=False).hexdigest()
        out.append(Item(oid, "e" + oid[1:], fp, digest))
    return out


_BODY = occurrence()
_TEXT = (_BODY["issue_title"], _BODY["subtitle"], _BODY["culprit"])
_EVIDENCE = orjson.dumps(_BODY["evidence_data"]).decode()
_DISPLAY = orjson.dumps(_BODY["evidence_display"]).decode()


def _occ_row(item: Item, group_id: int, when: Any) -> tuple[Any, ...]:
    fingerprint = orjson.dumps([item.fingerprint]).decode()
    return (item.id, group_id, item.event_id, fingerprint, *_TEXT, _EVIDENCE, _DISPLAY, when, when)


def _group_row(item: Item, short_id: int, seen: int, when: Any) -> tuple[Any, ...]:
    title, subtitle, culprit = _TEXT
    return (
        item.hash,
        short_id,
        title,
        subtitle,
        culprit,
        when,
        when,
        when,
        seen,
        item.id,
        when,
    ) + (
        when,
        when,
    )


def migrated_sqlite(path: Path) -> None:
    """A fresh SQLite file with the project's schema and project 1."""
    path.unlink(missing_ok=True)
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO organizations VALUES (1, 'default', 'Default', 0, ?)", (SQLITE_TIME,)
        )
        conn.execute(
            "INSERT INTO projects (id, organization_id, slug, name, resolve_age_hours, "
            "next_short_id, created_at) "
            "VALUES (1, 1, 'default', 'Default', 0, 1, ?)",
            (SQLITE_TIME,),
        )


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _sqlite_write(conn: sqlite3.Connection, todo: list[Item], batch: int, short_id: int) -> int:
    """Store ``todo``, one transaction per ``batch``; returns the last short id used."""
    group_sql = GROUP_UPSERT.format(p="?")
    for begin in range(0, len(todo), batch):
        chunk = todo[begin : begin + batch]
        conn.execute("BEGIN IMMEDIATE")
        seen = Counter(i.hash for i in chunk)
        firsts = {i.hash: i for i in reversed(chunk)}
        ids: dict[str, int] = {}
        for h, n in seen.items():
            short_id += 1
            row = _group_row(firsts[h], short_id, n, SQLITE_TIME)
            ids[h] = conn.execute(group_sql, row).fetchone()[0]
        conn.executemany(HASH_INSERT.format(p="?"), list(ids.items()))
        conn.executemany(
            OCC_INSERT.format(p="?"), [_occ_row(i, ids[i.hash], SQLITE_TIME) for i in chunk]
        )
        conn.executemany(
            COUNT_UPSERT.format(p="?"), [(ids[h], HOUR, n) for h, n in sorted(seen.items())]
        )
        conn.execute("COMMIT")
    return short_id


class TimedRuns:
    """Timed runs written one at a time, after an untimed prefill (batches of 100).

    The prefill gives the tables the size the service's own runs write into; each run follows
    the one before, so the tables grow as they do for the service, and a caller may alternate
    these runs with the service's (``bench.run.service``). ``write(items, batch, short_id)``
    stores items and returns the last short id it used; ``execute`` runs the check's queries.
    """

    def __init__(
        self,
        write: Callable[[list[Item], int, int], int],
        execute: Any,
        prefill: list[Item],
        batch: int,
    ) -> None:
        self._write = write
        self._execute = execute
        self.batch = batch
        self.short_id = write(prefill, 100, 0)
        self.stored = len(prefill)

    def run(self, todo: list[Item]) -> float:
        """Occurrences per second of writing ``todo``, checked against the tables."""
        start = time.perf_counter()
        self.short_id = self._write(todo, self.batch, self.short_id)
        elapsed = time.perf_counter() - start
        self.stored += len(todo)
        _check(self._execute, self.stored)
        return len(todo) / elapsed


class SqliteRuns(TimedRuns):
    """``TimedRuns`` into a fresh SQLite file (WAL, synchronous=NORMAL, like the service)."""

    def __init__(self, path: Path, prefill: list[Item], batch: int) -> None:
        migrated_sqlite(path)
        self.conn = _sqlite_connect(path)
        super().__init__(partial(_sqlite_write, self.conn), self.conn.execute, prefill, batch)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def sqlite_rates(
    path: Path, prefill: list[Item], runs: list[list[Item]], batch: int
) -> list[float]:
    """Occurrences per second of each run into one SQLite file that first holds ``prefill``."""
    raw = SqliteRuns(path, prefill, batch)
    try:
        return [raw.run(todo) for todo in runs]
    finally:
        raw.close()


def sqlite_rate(path: Path, todo: list[Item], batch: int) -> float:
    """Occurrences per second into a fresh SQLite file, one transaction per ``batch``."""
    return sqlite_rates(path, [], [todo], batch)[0]


def _check(execute: Any, expected: int) -> None:
    stored = execute("SELECT count(*) FROM occurrences").fetchone()[0]
    seen = execute("SELECT sum(times_seen) FROM groups").fetchone()[0]
    if not stored == seen == expected:
        raise RuntimeError(f"storage limit: {stored} rows, times_seen {seen}, {expected} expected")


def _pg_write(conn: psycopg.Connection[Any], todo: list[Item], batch: int, short_id: int) -> int:
    """Store ``todo`` (pipelined executemany), one transaction per ``batch``; the last short id."""
    group_sql = GROUP_UPSERT.format(p="%s")
    for begin in range(0, len(todo), batch):
        chunk = todo[begin : begin + batch]
        seen = Counter(i.hash for i in chunk)
        firsts = {i.hash: i for i in reversed(chunk)}
        hashes = sorted(seen)
        with conn.cursor() as cur:
            rows = []
            for h in hashes:
                short_id += 1
                rows.append(_group_row(firsts[h], short_id, seen[h], DETECTED))
            cur.executemany(group_sql, rows, returning=True)
            group_ids = []
            while True:
                group_ids.append(cur.fetchone()[0])  # type: ignore[index]
                if not cur.nextset():
                    break
            ids = dict(zip(hashes, group_ids, strict=True))
            cur.executemany(HASH_INSERT.format(p="%s"), list(ids.items()))
            cur.executemany(
                OCC_INSERT.format(p="%s"), [_occ_row(i, ids[i.hash], DETECTED) for i in chunk]
            )
            cur.executemany(COUNT_UPSERT.format(p="%s"), [(ids[h], HOUR, seen[h]) for h in hashes])
        conn.commit()
    return short_id


def postgres_rates(
    url: str, prefill: list[Item], runs: list[list[Item]], batch: int
) -> list[float]:
    """``sqlite_rates`` on a fresh PostgreSQL database (pipelined executemany)."""
    upgrade(url)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO organizations VALUES (1, 'default', 'Default', false, now())")
        conn.execute(
            "INSERT INTO projects (id, organization_id, slug, name, resolve_age_hours, "
            "next_short_id, created_at) "
            "VALUES (1, 1, 'default', 'Default', 0, 1, now())"
        )
        conn.commit()
        timed = TimedRuns(partial(_pg_write, conn), conn.execute, prefill, batch)
        return [timed.run(todo) for todo in runs]
