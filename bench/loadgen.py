"""Load generators: wrk with the Lua scripts of this folder, and a fixed-rate asyncio client."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.payload import OID, occurrence, write_lua_fragments
from bench.server import LOADGEN_CPUS

HERE = Path(__file__).resolve().parent


def ensure_wrk() -> str:
    """Path of wrk; installs the Debian package when missing, else fails clearly."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get (Debian package 'wrk')", flush=True)
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        if subprocess.run(cmd, check=False, capture_output=True).returncode != 0:
            break
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is required: install it with `apt-get install -y wrk` and rerun")
    return found


@dataclass(frozen=True)
class PostRun:
    """One wrk POST run: accepted occurrences, wall time, latency."""

    accepted: int
    answers: int
    items_sent: int
    elapsed: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        """Accepted occurrences per second."""
        return self.accepted / self.elapsed if self.elapsed > 0 else 0.0


def _parse(out: str) -> dict[str, float]:
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            data: dict[str, float] = json.loads(line[len("BENCH_JSON ") :])
            return data
    raise RuntimeError(f"wrk printed no result:\n{out}")


def wrk_post(
    *,
    base: str,
    token: str,
    connections: int,
    seconds: float,
    batch: int,
    pool: int,
    work: Path,
) -> PostRun:
    """POST for ``seconds`` on ``connections`` connections (one wrk thread each)."""
    fragments = work / "fragments.lua"
    if not fragments.exists():
        write_lua_fragments(fragments)
    done_file = work / f"done-{uuid.uuid4().hex[:8]}"
    done_file.touch()
    prefix = uuid.uuid4().hex[:12]
    limit = int(seconds + 60)  # upper bound; threads stop themselves after `seconds`
    cmd = ["taskset", "-c", LOADGEN_CPUS, ensure_wrk(), "-t", str(connections)]
    cmd += ["-c", str(connections), "-d", f"{limit}s", "--timeout", "60s"]
    cmd += ["-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json"]
    cmd += ["-s", str(HERE / "post.lua"), base, "--", str(fragments), str(seconds)]
    cmd += [str(batch), str(pool), prefix, str(done_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + limit + 30
    while proc.poll() is None and time.monotonic() < deadline:
        if len(done_file.read_text().split()) >= connections:
            proc.send_signal(signal.SIGINT)  # every thread is idle: end now, print done()
            break
        time.sleep(0.05)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    done_file.unlink(missing_ok=True)
    data = _parse(out + err)
    return PostRun(
        accepted=int(data["accepted"]),
        answers=int(data["answers"]),
        items_sent=int(data["items_sent"]),
        elapsed=float(data["elapsed"]),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=int(data["errors"]),
    )


@dataclass(frozen=True)
class GetRun:
    """One wrk GET run on one connection."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk_get(*, base: str, path: str, token: str, seconds: float) -> GetRun:
    """GET one path back to back on one connection; latency is the service time."""
    cmd = ["taskset", "-c", LOADGEN_CPUS, ensure_wrk(), "-t", "1", "-c", "1"]
    cmd += ["-d", f"{max(1, round(seconds))}s", "--timeout", "10s"]
    cmd += ["-H", f"Authorization: Bearer {token}", "-s", str(HERE / "get.lua"), base, "--", path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    data = _parse(out.stdout)
    return GetRun(
        requests=int(data["requests"]),
        seconds=data["seconds"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=int(data["errors"]),
    )


@dataclass(frozen=True)
class RateRun:
    """One fixed-rate run: accepted answers and latency from the scheduled send time."""

    rate: float
    sent: int
    accepted: int
    p50_ms: float
    p99_ms: float
    late: int


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _fixed_rate(
    host: str, port: int, token: str, rate: float, seconds: float, connections: int, pool: int
) -> RateRun:
    template = json.dumps(occurrence(OID, OID, "bench-fp-0"))
    total = int(rate * seconds)
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    accepted = 0
    late = 0
    prefix = uuid.uuid4().hex[:12]

    async def send(i: int, scheduled: float) -> None:
        nonlocal accepted
        oid = f"{prefix}{i:020x}"
        body = (
            template.replace(OID, oid, 1)
            .replace(OID, "e" + oid[1:], 1)
            .replace("bench-fp-0", f"bench-fp-{(i * 7919) % pool}")
            .encode()
        )
        head = (
            f"POST /occurrences HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        reader, writer = await idle.get()
        writer.write(head + body)
        await writer.drain()
        header = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in header.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - scheduled)
        if header[9:12] == b"202":
            accepted += 1
        idle.put_nowait((reader, writer))

    tasks = []
    start = time.perf_counter() + 0.1
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1
        tasks.append(asyncio.create_task(send(i, scheduled)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    while not idle.empty():
        _, writer = idle.get_nowait()
        writer.close()
    return RateRun(
        rate=rate,
        sent=total,
        accepted=accepted,
        p50_ms=_percentile(latencies, 50) * 1000,
        p99_ms=_percentile(latencies, 99) * 1000,
        late=late,
    )


def fixed_rate(
    *, port: int, token: str, rate: float, seconds: float, connections: int = 64, pool: int = 1000
) -> RateRun:
    """Open-loop POST /occurrences at a fixed rate (asyncio, pinned to the load-generator core)."""
    os.sched_setaffinity(0, {int(LOADGEN_CPUS)})
    # uvloop: the client's own per-request cost must stay small next to the latency it
    # measures (with the default loop it fell behind its schedule above ~1,000/s here).
    import uvloop

    coroutine = _fixed_rate("127.0.0.1", port, token, rate, seconds, connections, pool)
    # No collector pauses in the client: a full collection over this process's heap (the
    # bench imports plotting and the app) stalled the schedule for tens of milliseconds, and
    # latency counts from the scheduled send time. Reference counting still frees the garbage.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return uvloop.run(coroutine)
    finally:
        gc.enable()
        gc.unfreeze()
