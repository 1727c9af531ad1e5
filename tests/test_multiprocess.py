"""Many API processes on one database: two real ``issue-platform serve`` processes, hammered.

Both servers get the same new fingerprints, the same occurrence ids at the same instant, status
changes racing with occurrences, and ``issue-platform auto-resolve`` passes running meanwhile.
Afterwards the database must hold exactly one issue per fingerprint, exact counts, and an
activity log per issue that replays to the issue's status. PostgreSQL runs the full variant;
SQLite (WAL, several processes on one file) a lighter one.
"""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.issue_types.service import reload_registry
from app.lifecycle.jobs import auto_resolve
from app.main import build_context
from app.models import Activity, Group, GroupHash, HourlyCount, Occurrence
from tests.builders import md5, occurrence
from tests.conftest import ADMIN_TOKEN, ON_POSTGRES
from tests.processes import cli, free_port

PROJECT_ID = 4242
RESOLVE_AGE_HOURS = 24
NOISE_TYPE = 1004  # performance_render_blocking_asset_span: 3 occurrences open an issue
# PostgreSQL gets the full load; SQLite serialises writers, so it gets a lighter one.
PAIRS = 3 if ON_POSTGRES else 2
ROUNDS = 40 if ON_POSTGRES else 15
DEADLINE_SECONDS = 45.0
STORED_OUTCOMES = {"created", "grouped", "regressed", "pending"}
NOT_STORED_OUTCOMES = {"duplicate", "dropped", "rate_limited"}

AGED_QUIET = [f"aged-quiet-{n}" for n in range(3)]  # only auto-resolve touches these
# Opened during the run with an old occurrence (so at once eligible for auto-resolve), then
# reached a few steps later by recent occurrences from every pair: regression and auto-resolve race.
AGED_HOT = [f"aged-hot-{n}" for n in range(16)]
REACH_LAG = 4
NEW = [f"new-{n}" for n in range(5)]  # first created while both servers race
NOISE = [f"noisy-{n}" for n in range(2)]  # below/above a noise threshold, racing
STATUS_TARGETS = [
    ("resolved", None),
    ("ignored", "archived_forever"),
    ("unresolved", "ongoing"),
]


@dataclass
class Server:
    """One ``issue-platform serve`` process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        """The end of the server's output, for failure messages."""
        return self.log.read_text(errors="replace")[-4000:]


def _environment(db_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUE_PLATFORM_")}
    env.update(
        {
            "ISSUE_PLATFORM_DATABASE_URL": db_url,
            "ISSUE_PLATFORM_ADMIN_TOKEN": ADMIN_TOKEN,
            "ISSUE_PLATFORM_DATA_DIR": str(data_dir),
            "ISSUE_PLATFORM_JOBS_INTERVAL_SECONDS": "3600",
            "ISSUE_PLATFORM_DB_POOL_SIZE": "4",
            "ISSUE_PLATFORM_DB_MAX_OVERFLOW": "4",
        }
    )
    return env


def _wait_ready(server: Server, deadline: float) -> None:
    while True:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"server not ready within the deadline:\n{server.log_tail()}")
        time.sleep(0.1)


@pytest.fixture
def servers(db_url: str, tmp_path: Path) -> Iterator[list[Server]]:
    """Two ``serve`` processes on free loopback ports, started at the same moment."""
    env = _environment(db_url, tmp_path / "data")
    started: list[Server] = []
    try:
        for n in range(2):
            port = free_port()
            log = tmp_path / f"serve-{n}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*cli(), "serve", "--host", "127.0.0.1", "--port", str(port)]
                    + ["--workers", "1"],
                    env=env,
                    cwd=tmp_path,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(Server(f"http://127.0.0.1:{port}", process, log))
        deadline = time.monotonic() + 60
        for server in started:
            _wait_ready(server, deadline)
        yield started
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


@dataclass
class Tally:
    """Everything the servers answered, shared by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    # occurrence id -> fingerprint, and every outcome answered for it
    fingerprint_of: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    status_answers: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    status_codes: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    auto_resolved: list[int] = field(default_factory=list)

    def sent(self, items: list[dict[str, Any]]) -> None:
        with self.lock:
            for item in items:
                self.fingerprint_of[item["id"]] = item["fingerprint"][0]

    def answered(self, item: dict[str, Any], status: int, body: dict[str, Any]) -> None:
        with self.lock:
            if status != 202:
                self.problems.append(f"occurrence {item['id']}: {status} {body}")
                return
            self.outcomes[item["id"]].append(body["outcome"])

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def _payload(fingerprint: str, moment: datetime, *, rng: random.Random) -> dict[str, Any]:
    noisy = fingerprint.startswith("noisy")
    return occurrence(
        project_id=PROJECT_ID,
        fingerprint=[fingerprint, f"{fingerprint}-extra-{rng.randrange(3)}"],
        type=NOISE_TYPE if noisy else 1,
        detection_time=moment.isoformat(),
        issue_title=f"Issue {fingerprint}",
    )


def _recent(rng: random.Random) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=rng.randrange(1, 3600))


def _check_items(
    tally: Tally, items: list[dict[str, Any]], response: httpx.Response, *, key: str = "results"
) -> None:
    if response.status_code != 200:
        tally.problem(f"{response.request.url}: {response.status_code} {response.text[:500]}")
        return
    results = response.json()[key]
    occurrences = [r for r in results if r.get("payload_type", "occurrence") == "occurrence"]
    for item, result in zip(items, occurrences, strict=True):
        status = 202 if "outcome" in result else int(result.get("status", 0))
        tally.answered(item, status, result)


def _send_status_change(client: httpx.Client, tally: Tally, body: dict[str, Any]) -> None:
    r = client.post("/status-changes", json=body)
    with tally.lock:
        tally.status_codes[r.status_code] += 1
    if r.status_code == 200:
        if body.get("id"):
            with tally.lock:
                tally.status_answers[body["id"]].append(r.json())
    elif not (r.status_code == 404 and r.json()["error"]["code"] == "issue_not_found"):
        tally.problem(f"status change {body}: {r.status_code} {r.text[:300]}")


def _send(client: httpx.Client, tally: Tally, kind: str, step: list[dict[str, Any]]) -> None:
    """Send one step: a status change, or occurrences by one of the three ingest routes."""
    if kind == "status":
        _send_status_change(client, tally, step[0])
        return
    items = [m for m in step if m.get("payload_type") != "status_change"]
    tally.sent(items)
    if kind == "single":
        for item in items:
            r = client.post("/occurrences", json=item)
            tally.answered(item, r.status_code, r.json())
    elif kind == "batch":
        r = client.post("/occurrences/batch", json={"occurrences": items})
        _check_items(tally, items, r)
    else:
        r = client.post("/ingest", json=step)
        _check_items(tally, items, r)
        if r.status_code == 200:
            for result in r.json()["results"]:
                if (
                    result["payload_type"] == "status_change"
                    and "issue" not in result
                    and result.get("code") != "issue_not_found"
                ):
                    tally.problem(f"/ingest status change: {result}")


def _status_change(rng: random.Random, fingerprints: list[str], name: str) -> dict[str, Any]:
    """A status change for both servers at once; half of them carry an idempotency id."""
    status, substatus = rng.choice(STATUS_TARGETS)
    change_id = f"change-{name}" if rng.random() < 0.5 else None
    body: dict[str, Any] = {
        "fingerprint": [rng.choice(fingerprints)],
        "project_id": PROJECT_ID,
        "new_status": status,
        "new_substatus": substatus,
        "detector_id": "racer",
        "activity_data": {"change": change_id},
    }
    if change_id is not None:
        body["id"] = change_id
    return body


def _aged_schedule() -> dict[str, int]:
    """The step at which each aged issue is opened."""
    return {fp: k * ROUNDS // len(AGED_HOT) for k, fp in enumerate(AGED_HOT)}


def _occurrence_pair(
    servers: list[Server], tally: Tally, seed: int, deadline: float, *, opener: bool
) -> list[Callable[[], None]]:
    """Two threads, one per server, sending the very same requests at the same moment.

    A step is occurrences (one, a batch, or an ``/ingest`` array that may hold a status change)
    or a status change; ids repeat within a request, across steps and across the two servers.
    """
    rng = random.Random(seed)
    steps: list[tuple[str, list[dict[str, Any]]]] = []
    earlier: list[dict[str, Any]] = []
    schedule = _aged_schedule()
    old = datetime.now(UTC) - timedelta(hours=3 * RESOLVE_AGE_HOURS)
    for n in range(ROUNDS):
        opened = [fp for fp, at in schedule.items() if at == n]
        if opener and opened:
            steps.append(("batch", [_payload(fp, old, rng=rng) for fp in opened]))
        # Every pair reaches an aged issue at about the same step, so that its first recent
        # occurrence (a regression) races on both servers and with auto-resolve.
        reached = [fp for fp, at in schedule.items() if at + REACH_LAG <= n]
        kind = rng.choice(["single", "batch", "ingest"])
        size = 1 if kind == "single" else rng.randrange(2, 6)
        hot = reached + NEW + NOISE
        step = [_payload(reached[-1] if reached else rng.choice(hot), _recent(rng), rng=rng)]
        step += [_payload(rng.choice(hot), _recent(rng), rng=rng) for _ in range(size - 1)]
        if earlier and rng.random() < 0.3:
            step.append(rng.choice(earlier))  # an id sent again later
        if kind != "single" and rng.random() < 0.3:
            step.append(step[0])  # the same id twice in one request
        if kind == "ingest" and rng.random() < 0.5:
            target = rng.choice(STATUS_TARGETS)
            step.insert(
                rng.randrange(len(step) + 1),
                {
                    "payload_type": "status_change",
                    "fingerprint": [rng.choice(reached + NEW)],
                    "project_id": PROJECT_ID,
                    "new_status": target[0],
                    "new_substatus": target[1],
                },
            )
        earlier.extend(m for m in step if m.get("payload_type") != "status_change")
        steps.append((kind, step))
        if rng.random() < 0.4:
            steps.append(("status", [_status_change(rng, reached + NEW, f"{seed}-{n}")]))
    barrier = threading.Barrier(2)

    def worker(server: Server) -> None:
        with httpx.Client(base_url=server.url, headers=_headers(), timeout=30) as client:
            for kind, step in steps:
                if time.monotonic() > deadline:
                    tally.problem("occurrence pair ran out of time")
                    barrier.abort()
                    return
                try:
                    barrier.wait(timeout=30)
                except threading.BrokenBarrierError:
                    return
                _send(client, tally, kind, step)

    return [functools.partial(worker, s) for s in servers]


def _cli_auto_resolver(
    env: dict[str, str], cwd: Path, tally: Tally, stop: threading.Event
) -> Callable[[], None]:
    """``issue-platform auto-resolve`` passes, one after another, until the posting ends."""

    def run() -> None:
        while True:
            done = subprocess.run(  # noqa: S603
                [*cli(), "auto-resolve"],
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=40,
                check=False,
            )
            if done.returncode != 0:
                tally.problem(f"auto-resolve exited {done.returncode}: {done.stderr[-3000:]}")
                return
            summary = json.loads(done.stdout.strip().splitlines()[-1])
            with tally.lock:
                tally.auto_resolved.append(int(summary["resolved"]))
            if stop.is_set():
                return

    return run


def _tight_auto_resolver(db_url: str, tally: Tally, stop: threading.Event) -> Callable[[], None]:
    """Auto-resolve passes back to back on an engine of its own (as a third process would)."""

    def run() -> None:
        ctx = build_context(Settings(database_url=db_url, admin_token=ADMIN_TOKEN))
        try:
            with ctx.db.read() as session:
                reload_registry(session, ctx.registry)
            while not stop.is_set():
                summary = auto_resolve(ctx)
                with tally.lock:
                    tally.auto_resolved.append(int(summary["resolved"]))
                stop.wait(0.05)
        finally:
            ctx.db.dispose()

    return run


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _setup(server: Server, tally: Tally) -> None:
    """The project with auto-resolve, and one old occurrence per quiet aged fingerprint."""
    with httpx.Client(base_url=server.url, headers=_headers(), timeout=30) as client:
        r = client.post(
            "/admin/projects",
            json={
                "id": PROJECT_ID,
                "organization_id": 1,
                "slug": "multiproc",
                "name": "Multi-process",
                "resolve_age_hours": RESOLVE_AGE_HOURS,
            },
        )
        assert r.status_code == 201, r.text
        old = datetime.now(UTC) - timedelta(hours=3 * RESOLVE_AGE_HOURS)
        rng = random.Random(0)
        seeds = [_payload(fp, old, rng=rng) for fp in AGED_QUIET]
        tally.sent(seeds)
        r = client.post("/occurrences/batch", json={"occurrences": seeds})
        _check_items(tally, seeds, r)
    assert not tally.problems, tally.problems


# Replaying an issue's activities: which statuses each type may start from, and where it ends.
ALLOWED_FROM = {
    "set_resolved": {"unresolved", "ignored"},
    "auto_set_ongoing": {"unresolved"},
    "set_resolved_by_age": {"unresolved"},
    "set_ignored": {"unresolved", "resolved"},
    # from unresolved too: a status change from new or regressed to ongoing
    "set_unresolved": {"resolved", "ignored", "unresolved"},
    # from unresolved only when the issue counted as resolved by age (its first recent occurrence)
    "set_regression": {"resolved", "unresolved"},
}
ENDS_IN = {
    "set_resolved": "resolved",
    "auto_set_ongoing": "unresolved",
    "set_resolved_by_age": "resolved",
    "set_ignored": "ignored",
    "set_unresolved": "unresolved",
    "set_regression": "unresolved",
}
STATUS_NAMES = {0: "unresolved", 1: "resolved", 2: "ignored"}


def replay(fingerprint: str, types: list[str]) -> tuple[str, list[str]]:
    """The status an activity log leads to, and what is incoherent in it."""
    status = "unresolved"
    problems = []
    regressed_by_age = False
    for n, kind in enumerate(types):
        if kind not in ALLOWED_FROM:
            problems.append(f"{fingerprint}: unexpected activity {kind}")
            continue
        if n and types[n - 1] == kind:
            problems.append(f"{fingerprint}: {kind} twice in a row in {types}")
        if status not in ALLOWED_FROM[kind]:
            problems.append(f"{fingerprint}: {kind} while {status} in {types}")
        if kind == "set_regression" and status == "unresolved":
            if regressed_by_age or not fingerprint.startswith("aged"):
                problems.append(f"{fingerprint}: regression of an unresolved issue in {types}")
            regressed_by_age = True
        status = ENDS_IN[kind]
    return status, problems


def test_two_serve_processes_racing_keep_counts_issues_and_activity_exact(
    servers: list[Server], db_url: str, tmp_path: Path
) -> None:
    tally = Tally()
    _setup(servers[0], tally)
    deadline = time.monotonic() + DEADLINE_SECONDS
    posting: list[Callable[[], None]] = []
    for pair in range(PAIRS):
        posting += _occurrence_pair(
            servers, tally, seed=100 + pair, deadline=deadline, opener=pair == 0
        )
    stop = threading.Event()
    resolving = [
        _cli_auto_resolver(_environment(db_url, tmp_path / "data"), tmp_path, tally, stop),
        _tight_auto_resolver(db_url, tally, stop),
    ]

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - reported through the tally
                tally.problem(f"{type(exc).__name__}: {exc}")

        return run

    posters = [threading.Thread(target=guarded(fn)) for fn in posting]
    resolvers = [threading.Thread(target=guarded(fn)) for fn in resolving]
    for t in resolvers + posters:
        t.start()
    for t in posters:
        t.join(timeout=DEADLINE_SECONDS + 30)
    stop.set()
    for t in resolvers:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in posters + resolvers), "client threads did not finish"
    logs = "\n".join(s.log_tail() for s in servers)
    assert not tally.problems, "\n".join(tally.problems[:20]) + "\n" + logs
    assert "Traceback" not in logs, logs

    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            groups = {
                g.hash: g for g in conn.execute(select(Group).where(Group.project_id == PROJECT_ID))
            }
            stored = dict(
                conn.execute(
                    select(Occurrence.group_id, func.count())
                    .where(Occurrence.project_id == PROJECT_ID)
                    .group_by(Occurrence.group_id)
                ).all()
            )
            total_stored = conn.scalar(
                select(func.count())
                .select_from(Occurrence)
                .where(Occurrence.project_id == PROJECT_ID)
            )
            hourly = dict(
                conn.execute(
                    select(HourlyCount.group_id, func.sum(HourlyCount.count)).group_by(
                        HourlyCount.group_id
                    )
                ).all()
            )
            primary_links = Counter(
                conn.execute(
                    select(GroupHash.hash).where(
                        GroupHash.project_id == PROJECT_ID,
                        GroupHash.hash.in_([md5(fp) for fp in tally.fingerprint_of.values()]),
                    )
                ).scalars()
            )
            activities: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
            for row in conn.execute(
                select(Activity.group_id, Activity.type, Activity.data).order_by(Activity.id)
            ):
                activities[row.group_id].append((row.type, row.data or {}))
    finally:
        engine.dispose()

    # Every id: answered once as stored, every other time as a duplicate.
    ids_by_fingerprint: dict[str, set[str]] = defaultdict(set)
    created = Counter()
    for occ_id, answers in tally.outcomes.items():
        kept = [a for a in answers if a in STORED_OUTCOMES]
        assert len(kept) == 1, (occ_id, answers)
        assert set(answers) - STORED_OUTCOMES <= NOT_STORED_OUTCOMES, (occ_id, answers)
        assert answers.count("duplicate") == len(answers) - 1, (occ_id, answers)
        ids_by_fingerprint[tally.fingerprint_of[occ_id]].add(occ_id)
        created[tally.fingerprint_of[occ_id]] += kept[0] == "created"
    assert set(tally.outcomes) == set(tally.fingerprint_of), "some ids were never answered"
    kept_total = sum(
        1 for answers in tally.outcomes.values() for a in answers if a not in NOT_STORED_OUTCOMES
    )
    assert kept_total == total_stored

    # One issue per fingerprint, counted exactly.
    assert set(groups) == {md5(fp) for fp in ids_by_fingerprint}
    assert all(n == 1 for n in primary_links.values()), primary_links
    for fingerprint, ids in ids_by_fingerprint.items():
        group = groups[md5(fingerprint)]
        assert created[fingerprint] == 1, fingerprint
        assert group.times_seen == stored.get(group.id, 0) == len(ids), fingerprint
        assert hourly.get(group.id) == group.times_seen, fingerprint
    assert None not in stored, "pending occurrences were left behind an issue"

    # Activity logs replay to each issue's status, with no transition applied twice.
    incoherent: list[str] = []
    for fingerprint in ids_by_fingerprint:
        group = groups[md5(fingerprint)]
        final, problems = replay(fingerprint, [kind for kind, _ in activities[group.id]])
        incoherent += problems
        if final != STATUS_NAMES[group.status]:
            incoherent.append(f"{fingerprint}: replay ends {final}, issue is {group.status}")
        if (group.resolved_at is not None) != (group.status == 1):
            incoherent.append(f"{fingerprint}: resolved_at {group.resolved_at} vs status")
    assert not incoherent, "\n".join(incoherent)

    # Auto-resolve ran while the servers wrote: each resolution recorded once.
    by_age = sum(kind == "set_resolved_by_age" for log in activities.values() for kind, _ in log)
    assert by_age == sum(tally.auto_resolved)
    for fingerprint in AGED_QUIET:
        group = groups[md5(fingerprint)]
        assert [kind for kind, _ in activities[group.id]] == ["set_resolved_by_age"]

    # A status change id sent to both servers at once is recorded once and answered alike.
    recorded = Counter(
        data.get("change") for log in activities.values() for _, data in log if data.get("change")
    )
    assert all(n == 1 for n in recorded.values()), recorded
    for change_id, answers in tally.status_answers.items():
        changed = [a for a in answers if a["changed"]]
        if len(changed) == 2:
            assert changed[0]["activity"]["id"] == changed[1]["activity"]["id"], change_id
    # The run did race: the same ids twice, regressions, applied status changes.
    answered = Counter(a for answers in tally.outcomes.values() for a in answers)
    assert answered["duplicate"] > 0
    assert answered["regressed"] > 0
    assert tally.status_codes[200] > 0
