"""ASGI middleware: request id, latency metrics and body-size limits, all before any handler."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from app.logs import REQUEST_ID, request_id_from
from app.metrics import REQUEST_LATENCY, REQUESTS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BATCH_PATHS = ("/occurrences/batch", "/ingest")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED = "unrouted"

access_log = logging.getLogger("app.access")


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/issues/{issue_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNROUTED


@functools.cache
def _latency_of(route: str, method: str) -> Any:
    # Children are cached: labels() builds and locks on every call. The keys are bounded
    # (route templates x methods x statuses), like the metric's own label sets.
    return REQUEST_LATENCY.labels(route=route, method=method)


@functools.cache
def _requests_of(route: str, method: str, status: int) -> Any:
    return REQUESTS.labels(route=route, method=method, status=str(status))


class RequestContextMiddleware:
    """Gives every request an id (``X-Request-ID``) and records its latency and status.

    A valid incoming ``X-Request-ID`` is kept, anything else is replaced; the id is echoed in
    the answer and set in the logging context. Metrics are labelled by route template and
    method so their cardinality stays bounded whatever paths clients send.
    """

    def __init__(self, app: ASGIApp, *, log_requests: bool = False) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = request_id_from(incoming)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        echo = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), echo]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope.get("method", "GET")
            method = method if method in METHODS else "OTHER"
            route = route_template(scope)
            _latency_of(route, method).observe(elapsed)
            _requests_of(route, method, status).inc()
            if self.log_requests:
                access_log.info(
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={
                        "fields": {
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                        }
                    },
                )
            REQUEST_ID.reset(token)


class BodyLimitMiddleware:
    """Answer 413 ``payload_too_large`` for bodies over the limit, with or without a length.

    The body is read here (it is bounded by the limit) and replayed to the application, so a
    handler never sees a partial body and a chunked upload cannot bypass the limit.
    """

    def __init__(self, app: ASGIApp, *, max_body: int, max_batch_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_batch_body = max_batch_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.max_batch_body if path.rstrip("/") in BATCH_PATHS else self.max_body
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _too_large(send, limit)
                    return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"request body exceeds {limit} bytes",
                "details": {"limit": limit},
            }
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
