"""Liveness, readiness, metrics and the offline documentation pages."""

from __future__ import annotations

import hmac
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from app.dependencies import CtxDep
from app.errors import Unauthenticated, error_responses
from app.metrics import REGISTRY
from app.responses import JSONResponse
from app.system import service
from app.system.startup import started

router = APIRouter(tags=["system"])

STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"
static_files = StaticFiles(directory=STATIC_DIR)


class Health(BaseModel):
    """Liveness answer."""

    status: str = Field(description="`ok` when the process is alive.")


class Ready(BaseModel):
    """Readiness answer."""

    status: str = Field(description="`ok` or `unavailable`.")
    database: str = Field(
        description="`ok`, `unreachable`, `behind` (migrations pending), `starting` (at head, "
        "the process still starting) or `read_only` (writes fail: disk full, read-only database "
        "or I/O errors)."
    )
    revision: str | None = Field(None, description="Schema revision in the database.")
    head: str | None = Field(None, description="Schema revision the code expects.")


@router.get("/healthz", summary="Liveness", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=Ready,
    responses={
        503: {
            "model": Ready,
            "description": "Database unreachable, schema behind, process still starting or "
            "writes failing.",
        }
    },
)
def readyz(ctx: CtxDep) -> Response:
    """The database is reachable, its schema at the head revision, and writes are not failing."""
    state = service.readiness(ctx.db, started=started(ctx))
    code = 200 if state.status == "ok" else 503
    return JSONResponse(state.model_dump(), status_code=code)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses=error_responses(401),
)
def metrics(request: Request, ctx: CtxDep) -> Response:
    """Metrics in the Prometheus text format (needs the metrics token when one is set)."""
    expected = ctx.settings.metrics_token
    if expected:
        header = request.headers.get("authorization", "")
        token = header.partition(" ")[2].strip()
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise Unauthenticated("metrics token required")
    service.refresh_scrape_gauges(ctx.db, now=ctx.now())
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/docs", include_in_schema=False)
def swagger_ui() -> HTMLResponse:
    """Swagger UI served with bundled assets."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Issue Platform API",
        swagger_js_url="/docs-static/swagger-ui-bundle.js",
        swagger_css_url="/docs-static/swagger-ui.css",
        swagger_favicon_url="/docs-static/favicon.png",
    )


@router.get("/redoc", include_in_schema=False)
def redoc() -> HTMLResponse:
    """ReDoc served with bundled assets."""
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="Issue Platform API",
        redoc_js_url="/docs-static/redoc.standalone.js",
        redoc_favicon_url="/docs-static/favicon.png",
        with_google_fonts=False,
    )
