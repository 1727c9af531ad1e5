"""Failed authentications per client address: a token bucket each, held in this process's memory.

Pure rules (no framework, no database). Every wrong token takes one token from its address's
bucket; an empty bucket turns the 401 into a 429 until it refills. A valid token is never
counted nor refused here, so a client that holds one is not locked out by others sharing its
address. IPv6 clients are counted per /64, the block one host usually controls.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from app.ratelimit import TokenBuckets

UNKNOWN_CLIENT = "unknown"


def client_key(host: str | None) -> str:
    """The bucket of a client address: the address itself, its /64 for IPv6."""
    if not host:
        return UNKNOWN_CLIENT
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP (a Unix socket path, a test client's name)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class FailureLimit:
    """How many failed authentications each client address may make (``per_minute`` 0 = off)."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets = (
            TokenBuckets(rate=per_minute / 60, burst=burst, clock=clock) if per_minute > 0 else None
        )

    def failed(self, host: str | None) -> float:
        """Count one failed authentication; 0.0 within the budget, else seconds to wait."""
        if self._buckets is None:
            return 0.0
        return self._buckets.take({client_key(host): 1})
