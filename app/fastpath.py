"""The hot ingest routes served without the framework's routing and dependency layers.

``POST /occurrences`` and ``POST /occurrences/batch`` are most of a busy server's requests,
and FastAPI's per-request machinery (route matching over every route, dependency solving,
exit stacks) cost as much CPU as grouping the occurrence. This ASGI layer sits inside the
request-id, metrics and body-limit middleware and answers those two routes itself when the
caller is known without I/O (the admin token, or an API key in the key cache) and carries the
``ingest`` scope; every other request — and those two routes with a missing, unknown or
unprivileged token — goes on to the framework unchanged, which answers 401/403 as always (and
counts a wrong token against its address's failure budget: one rule, in ``current_principal``).

The answer is the one the framework route gives: the same functions build it (declared in
``app/main.py``: ``occurrences.router.answer_occurrence`` / ``answer_batch``), and errors are
rendered by the application's own exception handlers. The routes stay declared in FastAPI for
OpenAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Match

from app.auth.keys import bearer_token, principal_without_io
from app.auth.principal import Principal
from app.context import AppContext
from app.middleware import ASGIApp, Message, Receive, Scope, Send

# Builds the answer of one POST route from the caller and the raw body.
Answer = Callable[[AppContext, Principal, bytes], Awaitable[Any]]


class IngestFastPath:
    """ASGI layer answering the hot ingest routes directly (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI, routes: Mapping[str, Answer]) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        # Path -> the function answering a POST to it (the same one the framework route calls).
        self.routes = routes
        self._routes: dict[str, Any] = {}

    def _principal(self, ctx: AppContext, scope: Scope) -> Principal | None:
        """The caller when known without I/O and allowed to ingest; None: let FastAPI decide."""
        header = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")  # as Starlette decodes headers
                break
        token = bearer_token(header)
        if token is None:
            return None
        hit, principal = principal_without_io(ctx, token)
        if not hit or principal is None or not principal.has_scope("ingest"):
            return None
        return principal

    def _route(self, scope: Scope) -> Any:
        """The framework's route object, so metrics label the request by its template."""
        path: str = scope["path"]
        route = self._routes.get(path)
        if route is None:
            for candidate in _leaf_routes(self.fastapi_app.router.routes):
                if candidate.matches(scope)[0] == Match.FULL:
                    route = self._routes[path] = candidate
                    break
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if answer is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        ctx: AppContext = self.fastapi_app.state.ctx
        principal = self._principal(ctx, scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self._route(scope)
        scope["app"] = self.fastapi_app
        body = await _read_body(receive)
        if body is None:
            return  # the client left
        try:
            response = await answer(ctx, principal, body)
        except Exception as exc:  # noqa: BLE001  (rendered by the application's own handlers)
            handler = _handler_for(self.fastapi_app, exc)
            if handler is None:
                raise
            response = await handler(Request(scope), exc)
        await response(scope, receive, send)


def _leaf_routes(routes: Any) -> Any:
    """Every route, with those of included routers (kept nested by FastAPI) flattened."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaf_routes(inner.routes)
        else:
            yield route


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    more = True
    while more:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _handler_for(app: FastAPI, exc: Exception) -> Any:
    """The exception handler Starlette would pick for ``exc`` (nearest class in its MRO).

    The catch-all ``Exception`` handler is left to Starlette's server-error middleware, which
    logs and answers 500 exactly as for a framework route.
    """
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return handler
    return None
