"""Application factory: wires settings, database, registry, routers and error handling."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from app import __version__
from app.auth.key_cache import KeyCache
from app.config import Settings, get_settings
from app.console.router import router as console_router
from app.context import AppContext
from app.db import Database, create_db_engine, utcnow
from app.errors import install_error_handlers
from app.fastpath import IngestFastPath
from app.issue_types.builtins import create_registry
from app.issue_types.service import load_plugins
from app.middleware import BodyLimitMiddleware, RequestContextMiddleware
from app.occurrences.ingest.journal import fold_pending
from app.occurrences.router import answer_batch, answer_occurrence
from app.openapi_models import add_component_schemas
from app.responses import JSONResponse
from app.schemas import refuse_nul_parameters
from app.system.router import router as system_router
from app.system.router import static_files
from app.system.startup import Startup, StartupGate

log = logging.getLogger(__name__)
# The cyclic collector's thresholds while serving. Python's (700, 10, 10) ran a young
# collection every few dozen occurrences of a batch and a full one every few thousand: 5-7 us of
# CPU per ingested occurrence (timed with gc.callbacks in the served batch benchmark) and
# pauses of about 10 ms. Almost everything a request allocates is freed by reference counting, so
# collecting rarely holds little memory (at most ~50,000 young objects in cycles).
GC_THRESHOLDS = (50_000, 20, 100)


def settle_collector() -> None:
    """Once started: what exists now lives as long as the process, and collections are rare.

    Moving everything imported and built at start out of the collector's reach keeps full
    collections short (they showed as p99 stalls); see GC_THRESHOLDS for the rest.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


API_DESCRIPTION = """
Turns the findings of any detector into tracked, deduplicated issues.

Send **occurrences** (`POST /occurrences`), find **issues** (`GET /issues`), triage them
(`PATCH /issues/{id}`). Every endpoint except health, readiness, metrics and these docs needs
`Authorization: Bearer <token>`: the admin token or an API key with the right scope. In these
docs, **Authorize** takes the token, and "Try it out" then sends it.
"""


def read_admin_token(settings: Settings) -> str | None:
    """The admin token: from the settings, else from the file ``serve`` generated."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.admin_token_path
    if path.is_file():
        token = path.read_text().strip()
        return token or None
    return None


def build_context(settings: Settings, clock: Callable[[], datetime] | None = None) -> AppContext:
    """Create the engine, registry and caches of one application."""
    engine = create_db_engine(
        settings.resolved_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        connect_timeout=settings.db_connect_timeout_seconds,
        cache_mb=settings.sqlite_cache_mb,
    )
    load_plugins()
    ctx = AppContext(
        settings=settings,
        db=Database(engine),
        registry=create_registry(),
        key_cache=KeyCache(ttl_seconds=settings.auth_cache_seconds),
        admin_token=read_admin_token(settings),
        clock=clock or utcnow,
    )
    # Every session sees exact counts: the counter journal is folded first (journal.py).
    ctx.db.before_session = partial(fold_pending, ctx)
    return ctx


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    start_workers: bool = False,
) -> FastAPI:
    """Build the FastAPI application (``start_workers`` runs periodic jobs in the process)."""
    settings = settings or get_settings()
    ctx = build_context(settings, clock)

    startup = Startup(ctx)
    ctx.startup = startup

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Ready at once when the database is up to date; else the start-up (migrations
        # included) retries in a thread and requests needing the database answer 503 meanwhile.
        loop = asyncio.get_running_loop()
        started = asyncio.Event()
        startup.begin(on_ready=lambda: loop.call_soon_threadsafe(started.set))
        ctx.db.start_checkpointer(settings.sqlite_checkpoint_seconds)
        stoppers: list[Callable[[], Any]] = []
        waiting: asyncio.Task[None] | None = None
        if start_workers and settings.run_jobs:
            from app.jobs.runner import start_background_jobs

            if startup.ready.is_set():
                stoppers.append(await start_background_jobs(ctx))
            else:
                # The jobs need the schema: they start once the start-up is done.
                async def start_jobs_when_ready() -> None:
                    await started.wait()
                    stoppers.append(await start_background_jobs(ctx))

                waiting = asyncio.create_task(start_jobs_when_ready(), name="jobs:wait-startup")
        if start_workers:
            settle_collector()
        try:
            yield
        finally:
            # uvicorn has drained in-flight requests by now: stop the start-up retries, finish
            # queued ingest work, stop the job loops (a running job finishes its pass), then
            # close the connections.
            if waiting is not None and not waiting.done():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
            await asyncio.to_thread(startup.close)
            writer = ctx.ingest_writer
            if writer is not None:
                await asyncio.to_thread(writer.close)
                # Not needed for the counts (the journal is durable), but it leaves the
                # database's issues up to date for other readers and for a downgrade.
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(fold_pending, ctx)
            for stop in stoppers:
                result = stop()
                if hasattr(result, "__await__"):
                    await result
            ctx.db.dispose()
            log.info("stopped cleanly")

    app = FastAPI(
        title="Issue Platform",
        version=__version__,
        description=API_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        default_response_class=JSONResponse,
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_parameters)],
        # The service reports through its own Prometheus metrics and request log. FastAPI's
        # native OpenTelemetry would otherwise look up three global providers on every request
        # (about 6 µs of a single POST's 180) to find them unconfigured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    # Added first, so it runs inside the body limit (Starlette puts later ones outside).
    # The hot ingest routes, answered without FastAPI's routing (app/fastpath.py).
    hot_routes = {"/occurrences": answer_occurrence, "/occurrences/batch": answer_batch}
    app.add_middleware(IngestFastPath, fastapi_app=app, routes=hot_routes)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body=settings.max_body_bytes,
        max_batch_body=settings.max_batch_body_bytes,
        body_timeout=settings.body_timeout_seconds,
    )
    # Outside the others: until the start-up is done, answer 503 without reading the body.
    app.add_middleware(StartupGate, startup=startup)
    _outermost(app, settings)
    app.mount("/docs-static", static_files, name="docs-static")
    app.include_router(system_router)
    for router in _domain_routers():
        app.include_router(router)
    app.include_router(console_router)  # the web console under /ui (not in the API schema)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_component_schemas(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app


def _outermost(app: FastAPI, settings: Settings) -> None:
    """Put the request-id and latency middleware outside Starlette's error middleware.

    So the answer and the log record of an unexpected error (500) carry the request id too, and
    the metrics count it.
    """
    build = app.build_middleware_stack

    def build_with_context() -> Any:
        return RequestContextMiddleware(build(), log_requests=settings.access_log)

    app.build_middleware_stack = build_with_context  # type: ignore[method-assign]


def _domain_routers() -> list[Any]:
    """Routers of the domain packages, in the order they appear in the docs."""
    from app.routers import ROUTERS

    return list(ROUTERS)
