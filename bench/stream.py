"""``python -m bench.stream``: only the issue-stream latency, at the full size (1M / 100k).

The same measurement as scenario 4 of ``bench.run`` (wrk, one connection, SQLite, 1 worker),
for checking the stream's indexes without the rest of the suite.
"""

from __future__ import annotations

import argparse
import shutil

from bench import fill
from bench.run import ADMIN, FULL, WORK, Size, _add_key, _stream, log
from bench.server import start_service


def main() -> None:
    """Fill (or reuse) the database, serve it, measure GET /issues p50/p99."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--occurrences", type=int, default=FULL.fill[0])
    parser.add_argument("--issues", type=int, default=FULL.fill[1])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    size = Size(
        "stream", 0, args.reps, (args.occurrences, args.issues), (0, 0), 0, 0, 0, args.seconds
    )
    source = fill.cached(args.occurrences, args.issues)
    data_dir = WORK / "stream-only"
    shutil.rmtree(data_dir, ignore_errors=True)
    fill.copy_to(source, data_dir)
    key_token = _add_key(data_dir / "issue_platform.db")
    server = start_service(data_dir=data_dir, database_url=None, workers=1, admin_token=ADMIN)
    try:
        rows = _stream(server, size, key_token, args.occurrences, args.issues)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    worst = max(r.p99 or 0.0 for r in rows)
    verdict = "PASS" if worst <= 20 else "FAIL"
    log(f"{verdict}  GET /issues p99 (worst row) {worst:.1f} ms (target <= 20 ms)")


if __name__ == "__main__":
    main()
