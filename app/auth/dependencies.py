"""FastAPI dependencies resolving the bearer token into a ``Principal`` (over ``app.auth.keys``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.requests import HTTPConnection
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.keys import bearer_token, principal_without_io, refuse_token, resolve_principal
from app.auth.principal import Principal
from app.context import AppContext
from app.errors import Forbidden, Unauthenticated


class BearerScheme(HTTPBearer):
    """The ``bearer`` security scheme of the OpenAPI document (the Authorize button of /docs).

    Every operation depending on ``current_principal`` declares it. The header is parsed by
    ``bearer_token``, as on the ingest fast path; a missing token gives None, which
    ``current_principal`` answers with the service's own 401.
    """

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        token = bearer_token(request.headers.get("authorization", ""))
        if token is None:
            return None
        return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)


BEARER_SCHEME = BearerScheme(
    scheme_name="bearer",
    description="The admin token or an API key: `Authorization: Bearer <token>`.",
    auto_error=False,
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)]


async def current_principal(request: Request, credentials: BearerCredentials) -> Principal:
    """Any authenticated caller (async: the admin token and cached keys skip the threadpool).

    A wrong token counts against its client address's failure budget (``refuse_token``); the
    ingest fast path leaves every token it does not accept to this function.
    """
    ctx: AppContext = request.app.state.ctx
    if credentials is None:
        raise Unauthenticated("missing bearer token")
    token = credentials.credentials
    hit, principal = principal_without_io(ctx, token)
    if not hit:
        principal = await run_in_threadpool(resolve_principal, ctx, token)
    if principal is None:
        raise refuse_token(ctx, request.client.host if request.client else None)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    """Only the admin token."""
    if not principal.is_admin:
        raise Forbidden("admin token required")
    return principal


def _scoped(scope: str):  # type: ignore[no-untyped-def]
    async def dependency(principal: PrincipalDep) -> Principal:
        if not principal.has_scope(scope):
            raise Forbidden(f"scope '{scope}' required")
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


AdminDep = Annotated[Principal, Depends(require_admin)]
IngestDep = Annotated[Principal, Depends(_scoped("ingest"))]
ReadDep = Annotated[Principal, Depends(_scoped("read"))]
TriageDep = Annotated[Principal, Depends(_scoped("triage"))]
