"""``python -m bench.console``: a console stream page vs ``GET /issues`` at 100k issues.

Serves the benchmark's filled SQLite database (``bench.fill``: 1M occurrences / 100k issues by
default, cached under bench/results/) with ``issue-platform serve`` (1 worker), logs in to the
console with the admin token and with an organization's read key, and times, one request at a
time on a kept-alive connection, ``GET /issues`` and ``GET /ui/issues`` with the same filters in
alternating rounds. The fill's hourly counts are moved to end at the current hour first, so every
sparkline of the page reads real rows (the fill ends on a fixed date).

The budget (issue 15): the page's p99 within the API's p99 + 10 ms.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sqlite3
import statistics
import time
from dataclasses import dataclass

import httpx

from bench import fill
from bench.run import ADMIN, FULL, WORK, _add_key, log
from bench.server import start_service

BUDGET_MS = 10.0


@dataclass
class Timing:
    """Latencies of one URL, in milliseconds."""

    label: str
    samples: list[float]

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _shift_hourly_counts(db: str) -> None:
    """Move the fill's hourly counts so that its last hour is the current one."""
    now_hour = int(time.time() // 3600)
    end_hour = int(fill.END.timestamp() // 3600)
    with sqlite3.connect(db) as conn:
        # Two steps through negative hours: the primary key (group_id, hour) never collides.
        conn.execute("UPDATE hourly_counts SET hour = -hour")
        conn.execute("UPDATE hourly_counts SET hour = -hour + ?", (now_hour - end_hour,))


def _console_client(base: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/ui/login").text
    csrf = html.unescape(re.search(r'name="csrf_token" value="([^"]+)"', form).group(1))  # type: ignore[union-attr]
    answer = client.post("/ui/login", data={"token": token, "csrf_token": csrf})
    if answer.status_code != 303:
        raise SystemExit(f"console login failed: {answer.status_code}")
    return client


def _time(client: httpx.Client, url: str, n: int, timing: Timing, marker: str) -> None:
    for _ in range(n):
        start = time.perf_counter()
        answer = client.get(url)
        elapsed = (time.perf_counter() - start) * 1000
        if answer.status_code != 200 or marker not in answer.text:
            raise SystemExit(f"FAILED CHECK [{timing.label}]: {answer.status_code}")
        timing.samples.append(elapsed)


def main() -> None:
    """Fill (or reuse), serve, log in, measure both, print p50/p99 and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--occurrences", type=int, default=FULL.fill[0])
    parser.add_argument("--issues", type=int, default=FULL.fill[1])
    parser.add_argument("--requests", type=int, default=1000, help="per URL, in all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    source = fill.cached(args.occurrences, args.issues)
    data_dir = WORK / "console"
    shutil.rmtree(data_dir, ignore_errors=True)
    fill.copy_to(source, data_dir)
    db = data_dir / "issue_platform.db"
    _shift_hourly_counts(str(db))
    key_token = _add_key(db)
    server = start_service(data_dir=data_dir, database_url=None, workers=1, admin_token=ADMIN)
    results: list[tuple[str, Timing, Timing]] = []
    try:
        plans = [
            ("admin, default stream", ADMIN, ""),
            ("admin, type=error", ADMIN, "?type=error"),
            ("org read key, type=error", key_token, "?type=error"),
        ]
        for label, token, query in plans:
            api = httpx.Client(
                base_url=server.base, timeout=30, headers={"Authorization": f"Bearer {token}"}
            )
            ui = _console_client(server.base, token)
            api_t, ui_t = Timing(f"GET /issues{query}", []), Timing(f"GET /ui/issues{query}", [])
            # Warm both (statement compilation, page cache), then alternate rounds so that any
            # drift of the machine weighs on both alike.
            _time(api, f"/issues{query}", 30, Timing("warm", []), '"data"')
            _time(ui, f"/ui/issues{query}", 30, Timing("warm", []), 'class="spark"')
            per_round = max(1, args.requests // args.rounds)
            for _ in range(args.rounds):
                _time(api, f"/issues{query}", per_round, api_t, '"data"')
                _time(ui, f"/ui/issues{query}", per_round, ui_t, 'class="spark"')
            api.close()
            ui.close()
            results.append((label, api_t, ui_t))
            log(
                f"  {label}: GET /issues p50 {api_t.pct(0.5):.1f} ms p99 {api_t.pct(0.99):.1f} ms"
                f" | GET /ui/issues p50 {ui_t.pct(0.5):.1f} ms p99 {ui_t.pct(0.99):.1f} ms"
            )
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    log("")
    log(f"{args.issues:,} issues / {args.occurrences:,} occurrences, SQLite, 1 worker, 1 client")
    log("| stream | GET /issues p50 | p99 | GET /ui/issues p50 | p99 | p99 difference |")
    log("|---|---|---|---|---|---|")
    worst = 0.0
    for label, api_t, ui_t in results:
        diff = ui_t.pct(0.99) - api_t.pct(0.99)
        worst = max(worst, diff)
        log(
            f"| {label} | {api_t.pct(0.5):.1f} ms | {api_t.pct(0.99):.1f} ms | "
            f"{ui_t.pct(0.5):.1f} ms | {ui_t.pct(0.99):.1f} ms | {diff:+.1f} ms |"
        )
    medians = statistics.median(ui.pct(0.5) - api.pct(0.5) for _, api, ui in results)
    log(f"median p50 difference {medians:+.1f} ms")
    verdict = "PASS" if worst <= BUDGET_MS else "FAIL"
    log(f"{verdict}  worst p99 difference {worst:+.1f} ms (budget +{BUDGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
