"""Token buckets held in this process's memory, and the ``Retry-After`` they answer (pure).

Two limits use them: the per-project ingest rate (``app.occurrences.throttle``), asked before
any database work, and the failed-authentication budget per client address
(``app.auth.throttle``). Buckets live in one process, so N ``serve`` processes (or
``--workers N``) together accept up to N times the configured rate; see docs/operations.md.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Token buckets keyed by any hashable key, refilled at ``rate`` per second up to ``burst``.

    A request for ``n`` tokens passes when the bucket holds at least ``min(n, burst)``, and then
    takes all ``n`` (the bucket may go below zero): a batch larger than the burst is accepted
    from a full bucket, and the debt is paid back before the next one passes.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst > 0 else max(1.0, rate)
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, wants: Mapping[Hashable, int]) -> float:
        """Take the tokens for every key, all or none; 0.0 when taken, else seconds to wait."""
        now = self._clock()
        with self._lock:
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.clear()  # forgetting buckets only ever lets traffic through
            wait = 0.0
            buckets: dict[Hashable, _Bucket] = {}
            for key, count in wants.items():
                if count <= 0:
                    continue
                bucket = self._refilled(key, now)
                buckets[key] = bucket
                need = min(float(count), self.burst)
                if bucket.tokens < need:
                    wait = max(wait, (need - bucket.tokens) / self.rate)
            if wait > 0:
                return wait
            for key, bucket in buckets.items():
                bucket.tokens -= wants[key]
            return 0.0

    def _refilled(self, key: Hashable, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            return bucket
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        return bucket


def retry_after_seconds(wait: float) -> int:
    """Whole seconds for a ``Retry-After`` header (at least 1)."""
    return max(1, math.ceil(wait))
