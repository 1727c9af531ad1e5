"""``python -m bench.run --profile``: py-spy on the service while wrk sends single POSTs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bench.loadgen import wrk_post
from bench.server import start_service

SECONDS = 20


def _py_spy() -> str:
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(exe)


def top(raw: Path, n: int = 15) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Self and inclusive share of the hottest functions in py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")"
            for f in stack.split(";")
        ]
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(f, 100 * s / total) for f, s in c.most_common(n)]

    return share(own), share(inclusive)


def profile_single_post(work: Path, token: str, pool: int) -> None:
    """Record the SQLite one-worker service under 64 connections of single POSTs."""
    data_dir = work / "profile"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = start_service(data_dir=data_dir, database_url=None, workers=1, admin_token=token)
    raw = work / "profile.txt"
    gil = work / "profile-gil.txt"
    try:
        load = threading.Thread(
            target=wrk_post,
            kwargs={"base": server.base, "token": token, "connections": 64,
                    "seconds": SECONDS + 12, "batch": 0, "pool": pool, "work": work},
        )  # fmt: skip
        load.start()
        spy = [_py_spy(), "record", "--pid", str(server.proc.pid), "--duration", str(SECONDS)]
        # Wall clock first (shows waiting, e.g. for the SQLite write lock), then GIL-holding
        # samples only (where the CPU goes).
        subprocess.run([*spy, "--rate", "50", "--format", "raw", "--output", str(raw)], check=True)
        subprocess.run(
            [*spy[:-1], "8", "--rate", "50", "--gil", "--format", "raw", "--output", str(gil)],
            check=True,
        )
        load.join()
    finally:
        server.stop()
    for title, path in (("wall clock", raw), ("holding the GIL (CPU)", gil)):
        own, inclusive = top(path)
        print(f"\n== {title}: self time (% of samples)")
        for frame, pct in own:
            print(f"  {pct:5.1f}%  {frame}")
        print(f"== {title}: inclusive time (% of samples)")
        for frame, pct in inclusive:
            print(f"  {pct:5.1f}%  {frame}")
    print(f"\ncollapsed stacks (flamegraph.pl input): {raw}, {gil}")
