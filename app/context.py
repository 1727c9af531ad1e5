"""The per-application context: settings, database, registry, clock and caches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from app.auth.key_cache import KeyCache
from app.config import Settings
from app.db import Database, utcnow
from app.issue_types.registry import Registry


@dataclass
class AppContext:
    """Everything a request handler or job needs, built once per application."""

    settings: Settings
    db: Database
    registry: Registry
    key_cache: KeyCache
    admin_token: str | None
    clock: Callable[[], datetime] = utcnow
    # Free slots for domain packages (flag cache, writer, workers) keyed by name.
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        """The current time (injectable for tests)."""
        return self.clock()


async def get_context(request: Request) -> AppContext:
    """The application's context (FastAPI dependency)."""
    ctx: AppContext = request.app.state.ctx
    return ctx


# The one alias for route parameters that receive the context: ``ctx: CtxDep``.
CtxDep = Annotated[AppContext, Depends(get_context)]
