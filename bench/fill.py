"""Fill an SQLite database of the project's schema fast, with raw SQL (cached under results/).

Issues spread over several types, projects and 30 days; about ten occurrences per issue with a
long tail; hourly counts that match. Events are not stored (the issue stream does not read them).
"""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench.payload import occurrence
from bench.storage import migrated_sqlite

RESULTS = Path(__file__).resolve().parent / "results"
# (slug, type id, share of issues)
TYPES = [
    ("error", 1, 0.40),
    ("performance_n_plus_one_db_queries", 1006, 0.15),
    ("performance_slow_db_query", 1001, 0.10),
    ("profile_regex_main_thread", 2007, 0.10),
    ("monitor_check_in_failure", 4001, 0.10),
    ("replay_click_rage", 5002, 0.10),
    ("performance_large_http_payload", 1015, 0.05),
]
PROJECTS = [(1, 1), (2, 1), (3, 1), (4, 2)]  # (project, organization)
END = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=30)
LEVELS = ["error", "warning", "info", "fatal"]


def _t(moment: datetime) -> str:
    """How SQLAlchemy stores a datetime in SQLite (naive UTC with microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _counts(rng: random.Random, issues: int, occurrences: int) -> list[int]:
    """Occurrences per issue: at least one, mean occurrences/issues, a long tail."""
    mean = occurrences / issues
    counts = [1 + int(rng.expovariate(1 / max(mean - 1, 1e-9))) for _ in range(issues)]
    diff = occurrences - sum(counts)
    while diff != 0:
        i = rng.randrange(issues)
        if diff > 0:
            counts[i] += 1
            diff -= 1
        elif counts[i] > 1:
            counts[i] -= 1
            diff += 1
    return counts


def fill(path: Path, *, issues: int, occurrences: int, seed: int = 7) -> None:
    """Create ``path`` with ``issues`` issues and ``occurrences`` occurrences."""
    migrated_sqlite(path)
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    now = _t(END)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO organizations VALUES (2, 'other', 'Other', 0, ?)", (now,))
    for project, org in PROJECTS[1:]:
        conn.execute(
            "INSERT INTO projects (id, organization_id, slug, name, resolve_age_hours, "
            "next_short_id, created_at) VALUES (?, ?, ?, ?, 0, 1, ?)",
            (project, org, f"p{project}", f"Project {project}", now),
        )
    body = occurrence()
    evidence = orjson.dumps(body["evidence_data"]).decode()
    display = orjson.dumps(body["evidence_display"]).decode()
    counts = _counts(rng, issues, occurrences)
    weights = [w for _, _, w in TYPES]
    short_ids: Counter[int] = Counter()
    groups, hashes, hourly, occs = [], [], [], []
    serial = 0
    for gid, n in enumerate(counts, start=1):
        _, type_id, _ = rng.choices(TYPES, weights)[0]
        project = PROJECTS[rng.randrange(len(PROJECTS))][0]
        fp = f"fill-fp-{gid}"
        digest = hashlib.md5(fp.encode(), usedforsecurity=False).hexdigest()
        last = END - SPAN * rng.random() ** 2
        first = last - timedelta(hours=rng.random() * 72)
        step = (last - first) / max(n - 1, 1)
        latest = ""
        per_hour: Counter[int] = Counter()
        for k in range(n):
            serial += 1
            at = first + step * k
            latest = f"{serial:012x}{rng.getrandbits(80):020x}"
            per_hour[int(at.timestamp() // 3600)] += 1
            occs.append(
                (project, latest, gid, type_id, "e" + latest[1:], orjson.dumps([fp]).decode(),
                 f"Issue {gid}", "in handler", "app.views.index", evidence, display, _t(at),
                 "warning", 50, _t(at))
            )  # fmt: skip
        short_ids[project] += 1
        resolved = rng.random() < 0.2
        groups.append(
            (gid, project, type_id, digest, short_ids[project], f"Issue {gid}", "in handler",
             "app.views.index", rng.choice(LEVELS), 1 if resolved else 0, None if resolved else 7,
             _t(first), rng.choice((25, 50, 75)), 50, 0, _t(first), _t(last), n,
             _t(last) if resolved else None, latest, _t(last), None, None, 1, 1, _t(first),
             _t(last))
        )  # fmt: skip
        hashes.append((project, digest, gid))
        hourly.extend((gid, h, c) for h, c in per_hour.items())
        if len(occs) >= 50_000 or gid == issues:
            _flush(conn, groups, hashes, hourly, occs)
            groups, hashes, hourly, occs = [], [], [], []
    for project, next_id in short_ids.items():
        conn.execute("UPDATE projects SET next_short_id = ? WHERE id = ?", (next_id + 1, project))
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


def _flush(
    conn: sqlite3.Connection,
    groups: list[tuple[object, ...]],
    hashes: list[tuple[object, ...]],
    hourly: list[tuple[object, ...]],
    occs: list[tuple[object, ...]],
) -> None:
    conn.executemany(f"INSERT INTO groups VALUES ({', '.join('?' * 27)})", groups)
    conn.executemany("INSERT INTO group_hashes VALUES (?, ?, ?)", hashes)
    conn.executemany("INSERT INTO hourly_counts VALUES (?, ?, ?)", hourly)
    conn.executemany(
        "INSERT INTO occurrences (project_id, id, group_id, type_id, event_id, fingerprint, "
        "issue_title, subtitle, culprit, evidence_data, evidence_display, detection_time, level, "
        "priority, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        occs,
    )


def cached(occurrences: int, issues: int) -> Path:
    """The filled file for this size, made once and kept under bench/results/."""
    path = RESULTS / f"fill-{occurrences}-{issues}.db"
    if not path.exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        fill(tmp, issues=issues, occurrences=occurrences)
        tmp.rename(path)
        print(f"  filled {path.name} in {time.perf_counter() - start:.1f}s", flush=True)
    return path


def copy_to(source: Path, data_dir: Path) -> None:
    """Put a filled file where ``serve`` looks for its SQLite database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, data_dir / "issue_platform.db")
