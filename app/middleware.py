"""ASGI middleware: request id, latency metrics, body size and time limits, before any handler."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from app.errors import PayloadTooLarge, RequestTimeout
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


# How often the body deadlines are checked (at most; a tenth of a shorter limit): a request
# whose body is late is answered up to this much after its limit.
DEADLINE_STEP_SECONDS = 1.0


class BodyDeadlines:
    """The body deadlines of the requests one event loop is reading, checked by one timer.

    A timer per request (``asyncio.timeout``: a timer handle scheduled and cancelled, a context
    manager, a task's cancel count checked) cost about 4 % of a single POST's CPU, though
    nearly every body is already there when it is read. Here a request costs a dict entry;
    one timer runs every ``step`` seconds while some body is being read, and cancels the
    requests past their deadline. So a late body is cut off up to ``step`` after its limit.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, step: float) -> None:
        self._loop = loop
        self._step = step
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, task: asyncio.Task[Any], seconds: float) -> None:
        """Cancel ``task`` once ``seconds`` have passed, unless discarded before."""
        self._deadlines[task] = self._loop.time() + seconds
        if self._timer is None:
            self._timer = self._loop.call_later(self._step, self._check)

    def discard(self, task: asyncio.Task[Any]) -> None:
        """Forget ``task``: its body is read (or it ended)."""
        self._deadlines.pop(task, None)
        self._expired.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` was cancelled because its deadline passed."""
        return task in self._expired

    def _check(self) -> None:
        self._timer = None
        now = self._loop.time()
        late = [task for task, deadline in self._deadlines.items() if deadline <= now]
        for task in late:
            del self._deadlines[task]
            self._expired.add(task)
            task.cancel()
        if self._deadlines:
            self._timer = self._loop.call_later(self._step, self._check)


class BodyLimitMiddleware:
    """Read every request body before the application, within a size and a time limit.

    Over the size limit (with or without a ``Content-Length``): 413 ``payload_too_large``. Not
    all there within ``body_timeout`` seconds of the first read: 408 ``request_timeout``, and
    the connection is closed, so a client that stops sending cannot hold it open. The body is
    read here and replayed to the application, so a handler never sees a partial body, a chunked
    upload cannot bypass the limit, and the ingest fast path (inside this layer) is covered too.

    POST, PUT and PATCH bodies are always read; other methods' only when the request declares
    one (``Content-Length`` above 0 or ``Transfer-Encoding``).
    """

    def __init__(
        self, app: ASGIApp, *, max_body: int, max_batch_body: int, body_timeout: float = 30.0
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_batch_body = max_batch_body
        self.body_timeout = body_timeout
        # One per event loop (tests run an app on several); closed loops are dropped.
        self._deadlines: dict[asyncio.AbstractEventLoop, BodyDeadlines] = {}

    def _deadlines_of(self, loop: asyncio.AbstractEventLoop) -> BodyDeadlines:
        deadlines = self._deadlines.get(loop)
        if deadlines is None:
            for old in [other for other in self._deadlines if other.is_closed()]:
                del self._deadlines[old]
            # Not below 10 ms: uvloop runs a timer of less than 1 ms at once, so a tiny step
            # would spin the loop while a body is being read.
            step = min(DEADLINE_STEP_SECONDS, max(self.body_timeout / 10, 0.01))
            deadlines = self._deadlines[loop] = BodyDeadlines(loop, step)
        return deadlines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.max_batch_body if path.rstrip("/") in BATCH_PATHS else self.max_body
        has_body = scope["method"] in ("POST", "PUT", "PATCH")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _too_large(send, limit)
                    return
                has_body = has_body or declared > 0
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        # One deadline for the whole body (not per read): a client trickling a byte now and
        # then is cut off too.
        deadlines = self._deadlines_of(asyncio.get_running_loop())
        task = asyncio.current_task()
        assert task is not None
        deadlines.add(task, self.body_timeout)
        cancelling = task.cancelling()
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    break
                chunks.append(chunk)
                more = message.get("more_body", False)
        except asyncio.CancelledError:
            # Cancelled for another reason too (shutdown): that cancellation goes on.
            if not deadlines.expired(task) or task.uncancel() > cancelling:
                raise
            await _timed_out(send, self.body_timeout)
            return
        finally:
            deadlines.discard(task)
        if size > limit:
            await _too_large(send, limit)
            return
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _timed_out(send: Send, seconds: float) -> None:
    error = RequestTimeout(
        f"request body not received within {seconds:g} s", details={"limit_seconds": seconds}
    )
    await _answer_and_close(send, error.status_code, orjson.dumps(error.body()))


async def _too_large(send: Send, limit: int) -> None:
    error = PayloadTooLarge(f"request body exceeds {limit} bytes", details={"limit": limit})
    await _answer_and_close(send, error.status_code, orjson.dumps(error.body()))


async def _answer_and_close(send: Send, status: int, body: bytes) -> None:
    """An error answer after which the server closes the connection (the body is unread)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
