"""The per-application context: settings, database, registry, clock and caches.

It sits below the packages that use it: it imports the database module and pure state classes
only (no FastAPI: routes receive it through ``app.dependencies.CtxDep``), and names the objects
of modules above it (the start-up, the ingest writer) by protocols.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from app.auth.console_session import ConsoleUser, Signer
from app.auth.key_cache import KeyCache
from app.auth.throttle import FailureLimit
from app.config import Settings
from app.db import Database, utcnow
from app.issue_types.registry import Registry
from app.ratelimit import TokenBuckets
from app.rollout.rules import FlagCache


# The two objects below belong to modules that use the context, so the context names only what
# it needs of them: their classes satisfy these protocols (and stay free to import the context).
class StartupState(Protocol):
    """What the context shows of the start-up (``app.system.startup.Startup``)."""

    @property
    def ready(self) -> threading.Event:
        """Set once the database is migrated and the registry loaded."""
        ...


class IngestWriter(Protocol):
    """What the shutdown needs of the ingest writer (``ingest.writer.GroupCommitWriter``).

    Its ``submit`` is reached through ``app.occurrences.ingest.writer.writer_of``, which knows
    the class; naming it here would make the context import the ingest's answer types.
    """

    def close(self) -> None:
        """Finish the queued work and stop."""
        ...


class CounterJournalState(Protocol):
    """What the context holds of the counter journal (``ingest.recent.RecentIssues``)."""

    fold_at: float
    """``time.monotonic()`` of this process's last fold when due."""
    checked_at: float
    """``time.monotonic()`` of the last fold before an ingest transaction (``fold_if_stale``)."""
    journaled_at: float
    """``time.monotonic()`` of this process's last committed journal row (``idle_wait``)."""

    def hot(self, issue_id: int) -> bool:
        """Whether this process counted into the issue lately."""
        ...

    def touch(self, issue_ids: Iterable[int]) -> None:
        """Note issues counted into now."""
        ...

    def rotate(self) -> None:
        """A fold interval ended."""
        ...


@dataclass
class AppContext:
    """Everything a request handler or job needs, built once per application."""

    settings: Settings
    db: Database
    registry: Registry
    key_cache: KeyCache
    admin_token: str | None
    clock: Callable[[], datetime] = utcnow
    # The per-process state below is created on first use by the package owning it (or by
    # create_app for ``startup``); None until then.
    startup: StartupState | None = None
    """The start-up (migrations, retries) of this application (``app.system.startup``)."""
    ingest_writer: IngestWriter | None = None
    """The group-commit writer of ingest (``app.occurrences.ingest.writer.writer_of``)."""
    flag_cache: FlagCache | None = None
    """The rollout flag table cache (``app.rollout.service.flag_cache``)."""
    ingest_buckets: TokenBuckets | None = None
    """The per-project ingest rate limit buckets (``app.occurrences.throttle``)."""
    auth_failures: FailureLimit | None = None
    """The failed-authentication budget per client address (``app.auth.keys``)."""
    counter_journal: CounterJournalState | None = None
    """The counter journal's per-process state (``app.occurrences.ingest.journal.state_of``)."""
    registry_loaded_at: float | None = None
    """``time.monotonic()`` of the last registry reload (``app.issue_types.service``)."""
    console_signer: Signer | None = None
    """The console's cookie signer, its secret loaded once (``app.console.service.signer``)."""
    console_sessions: dict[tuple[int | None, str], tuple[float, int, ConsoleUser | None]] = field(
        default_factory=dict
    )
    """Console session look-ups: (key id, fingerprint) → (expiry, key cache generation, user)."""

    def now(self) -> datetime:
        """The current time (injectable for tests)."""
        return self.clock()
