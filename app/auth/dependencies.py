"""FastAPI dependencies resolving the bearer token into a ``Principal``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.requests import HTTPConnection
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from app.auth.principal import Principal, hash_token
from app.auth.throttle import FailureLimit
from app.context import AppContext
from app.errors import DomainError, Forbidden, RateLimited, Unauthenticated
from app.models import ApiKey
from app.ratelimit import retry_after_seconds


def failure_limit(ctx: AppContext) -> FailureLimit:
    """The context's budget of failed authentications per client address."""
    limit = ctx.auth_failures
    if limit is None:
        settings = ctx.settings
        limit = ctx.auth_failures = FailureLimit(
            per_minute=settings.auth_failures_per_minute, burst=settings.auth_failures_burst
        )
    return limit


def refuse_token(ctx: AppContext, host: str | None) -> DomainError:
    """The error for a wrong token: 401, or 429 once its address used up its failure budget."""
    wait = failure_limit(ctx).failed(host)
    if wait > 0:
        return RateLimited(
            "too many failed authentications from this address",
            retry_after=retry_after_seconds(wait),
        )
    return Unauthenticated("unknown token")


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer …`` header value, or None."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


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


def principal_without_io(
    ctx: AppContext, token: str, digest: str | None = None
) -> tuple[bool, Principal | None]:
    """What a token stands for when known without a query: the admin token or a cached key.

    ``(True, principal)``, with None for a cached unknown token; ``(False, None)`` when only
    the database can tell (resolve_principal). ``digest``: the token's hash, if already known.
    """
    admin = ctx.admin_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return True, Principal.admin()
    return ctx.key_cache.get(digest or hash_token(token))


def resolve_principal(ctx: AppContext, token: str) -> Principal | None:
    """The principal a token stands for, None for a wrong token (cached either way)."""
    digest = hash_token(token)
    hit, known = principal_without_io(ctx, token, digest)
    if hit:
        return known
    generation = ctx.key_cache.generation  # before the read: a revocation after it wins
    principal = None
    with ctx.db.read() as session:
        key = session.scalars(
            select(ApiKey).where(ApiKey.token_hash == digest, ApiKey.revoked_at.is_(None))
        ).first()
        # Read the row inside the session: closing it (rollback) expires loaded attributes.
        if key is not None:
            principal = Principal.of_key(key)
    ctx.key_cache.put(digest, principal, generation=generation)
    return principal


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
