"""The per-application context: settings, database, registry, clock and caches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from app.auth.key_cache import KeyCache
from app.auth.throttle import FailureLimit
from app.config import Settings
from app.db import Database, utcnow
from app.issue_types.registry import Registry
from app.occurrences.ratelimit import TokenBuckets

if TYPE_CHECKING:
    # Type-only: these modules use the context; the context only holds their objects.
    from app.console.service import ConsoleUser
    from app.console.session import Signer
    from app.occurrences.ingest.writer import GroupCommitWriter
    from app.rollout.service import FlagCache
    from app.system.startup import Startup


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
    startup: Startup | None = None
    """The start-up (migrations, retries) of this application (``app.system.startup``)."""
    ingest_writer: GroupCommitWriter | None = None
    """The group-commit writer of ingest (``app.occurrences.ingest.writer.writer_of``)."""
    flag_cache: FlagCache | None = None
    """The rollout flag table cache (``app.rollout.service.flag_cache``)."""
    ingest_buckets: TokenBuckets | None = None
    """The per-project ingest rate limit buckets (``app.occurrences.throttle``)."""
    auth_failures: FailureLimit | None = None
    """The failed-authentication budget per client address (``app.auth.dependencies``)."""
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


async def get_context(request: Request) -> AppContext:
    """The application's context (FastAPI dependency)."""
    ctx: AppContext = request.app.state.ctx
    return ctx


# The one alias for route parameters that receive the context: ``ctx: CtxDep``.
CtxDep = Annotated[AppContext, Depends(get_context)]
