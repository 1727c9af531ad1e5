"""Domain errors with an HTTP status and a stable code, and the one handler rendering them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db_errors import database_unavailable
from app.responses import JSONResponse

log = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of every error with an HTTP meaning."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        """The error body of SPEC §10."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def headers(self) -> dict[str, str] | None:
        """Extra response headers of this error (none by default)."""
        return None


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class RequestTimeout(DomainError):
    """The request body did not arrive within the time limit (the connection is closed)."""

    status_code = 408
    code = "request_timeout"


class PreconditionFailed(DomainError):
    status_code = 412
    code = "precondition_failed"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class InvalidPayload(DomainError):
    """A payload breaks a rule (422); ``code`` may be more specific than ``invalid_payload``."""

    status_code = 422
    code = "invalid_payload"


class RateLimited(DomainError):
    """Too many requests; the client should wait ``retry_after`` seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(DomainError):
    """The database cannot be used right now; retrying later is safe."""

    status_code = 503
    code = "service_unavailable"

    def headers(self) -> dict[str, str] | None:
        return dict(RETRY_HEADERS)


RETRY_HEADERS = {"Retry-After": "1"}
UNAVAILABLE_MESSAGE = "database unavailable, retry later"


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(description="Stable, machine-readable error code.")
    message: str = Field(description="Human-readable explanation.")
    details: Any = Field(None, description="Extra context, e.g. the offending field.")


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry documenting the given error statuses."""
    descriptions = {
        401: "Missing or unknown token (`unauthenticated`).",
        403: "Key outside its organization, projects or scopes (`forbidden`).",
        404: "Not found.",
        408: "Body not received within the time limit (`request_timeout`).",
        409: "Conflict.",
        412: "Stale `If-Match` (`precondition_failed`).",
        413: "Body over the size limit (`payload_too_large`).",
        422: "Invalid payload (`invalid_payload` or a more specific code).",
        429: "Project over its ingest rate limit (`rate_limited`); see `Retry-After`.",
        503: "Database unavailable (`service_unavailable`); retry after `Retry-After` seconds.",
    }
    return {s: {"model": ErrorBody, "description": descriptions.get(s, "Error.")} for s in statuses}


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) if parts else ".".join(str(p) for p in loc)


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors reduced to field path, message and type (no input echo)."""
    return [
        {"field": _loc(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, including FastAPI's own, in the SPEC §10 shape."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        first = details[0]["field"] if details else ""
        body = DomainError(f"invalid payload at '{first}'", details=details).body()
        body["error"]["code"] = "invalid_payload"
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8, not JSON): a bad payload,
            # which this API answers 422 `invalid_payload` everywhere (SPEC §10).
            body = DomainError(f"invalid payload: {exc.detail}").body()
            body["error"]["code"] = "invalid_payload"
            return JSONResponse(body, status_code=422)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail), "details": None}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        # The class name only: the message of a driver error may carry statement parameters.
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        body = ServiceUnavailable(UNAVAILABLE_MESSAGE).body()
        return JSONResponse(body, status_code=503, headers=dict(RETRY_HEADERS))

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated or database_unavailable(exc):
            # A lost connection, or a database that cannot write (PostgreSQL's read-only
            # transactions are not OperationalErrors).
            log.warning("database unavailable: %s", type(exc.orig).__name__)
            body = ServiceUnavailable(UNAVAILABLE_MESSAGE).body()
            return JSONResponse(body, status_code=503, headers=dict(RETRY_HEADERS))
        log.exception("database error")
        body = {"error": {"code": "internal_error", "message": "internal error", "details": None}}
        return JSONResponse(body, status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        body = {"error": {"code": "internal_error", "message": "internal error", "details": None}}
        return JSONResponse(body, status_code=500)
