"""The short-lived cache of API key look-ups kept on the context (pure: no FastAPI, no SQL)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TypeVar

from app.auth.principal import Principal

V = TypeVar("V")


class KeyCache:
    """Short-lived cache of key look-ups so hot paths skip a query per request.

    Two bounded LRUs: one for keys, one for tokens that matched no key, so a flood of wrong
    tokens only ever evicts other wrong tokens. ``clear()`` (a revocation) starts a new
    generation; a look-up that read the database before it cannot store its result after it.
    """

    def __init__(
        self, ttl_seconds: float, *, max_keys: int = 10_000, max_unknown: int = 10_000
    ) -> None:
        self.ttl = ttl_seconds
        self._known: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._max_known = max_keys
        self._max_unknown = max_unknown
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        """Take this before reading the database; pass it to ``put`` with the result."""
        return self._generation

    def get(self, token_hash: str) -> tuple[bool, Principal | None]:
        """``(True, principal)`` for a cached key, ``(True, None)`` for a cached wrong token."""
        now = time.monotonic()
        with self._lock:
            known = self._known.get(token_hash)
            if known is not None:
                if known[0] < now:
                    del self._known[token_hash]
                    return False, None
                self._known.move_to_end(token_hash)
                return True, known[1]
            expires = self._unknown.get(token_hash)
            if expires is None:
                return False, None
            if expires < now:
                del self._unknown[token_hash]
                return False, None
            self._unknown.move_to_end(token_hash)
            return True, None

    def put(self, token_hash: str, principal: Principal | None, *, generation: int) -> bool:
        """Cache a look-up made in ``generation``; False (not cached) when a clear() came since."""
        expires = time.monotonic() + self.ttl
        with self._lock:
            if generation != self._generation:
                return False
            if principal is None:
                self._known.pop(token_hash, None)
                _put_bounded(self._unknown, token_hash, expires, self._max_unknown)
            else:
                self._unknown.pop(token_hash, None)
                _put_bounded(self._known, token_hash, (expires, principal), self._max_known)
            return True

    def clear(self) -> None:
        """Forget every look-up, and every look-up still running (see ``put``)."""
        with self._lock:
            self._generation += 1
            self._known.clear()
            self._unknown.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._known) + len(self._unknown)


def _put_bounded(entries: OrderedDict[str, V], key: str, value: V, limit: int) -> None:
    """Insert as most recently used, dropping the least recently used beyond ``limit``."""
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > limit:
        entries.popitem(last=False)
