"""FastAPI dependencies resolving the bearer token into a ``Principal``."""

from __future__ import annotations

import hmac
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.requests import HTTPConnection
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from app.auth.principal import Principal, hash_token
from app.context import AppContext
from app.errors import Forbidden, Unauthenticated
from app.models import ApiKey


class KeyCache:
    """Short-lived cache of key lookups so hot paths skip a query per request."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> tuple[bool, Principal | None]:
        with self._lock:
            entry = self._entries.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, token_hash: str, principal: Principal | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[token_hash] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


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


def resolve_principal(ctx: AppContext, token: str) -> Principal:
    """The principal a token stands for, or 401."""
    digest = hash_token(token)
    hit, known = principal_without_io(ctx, token, digest)
    if hit:
        if known is None:
            raise Unauthenticated("unknown token")
        return known
    principal = None
    with ctx.db.read() as session:
        key = session.scalars(
            select(ApiKey).where(ApiKey.token_hash == digest, ApiKey.revoked_at.is_(None))
        ).first()
        # Read the row inside the session: closing it (rollback) expires loaded attributes.
        if key is not None:
            principal = Principal(
                is_admin=False,
                organization_id=key.organization_id,
                scopes=frozenset(key.scopes),
                project_ids=None if key.project_ids is None else frozenset(key.project_ids),
                key_id=key.id,
            )
    ctx.key_cache.put(digest, principal)
    if principal is None:
        raise Unauthenticated("unknown token")
    return principal


async def current_principal(request: Request, credentials: BearerCredentials) -> Principal:
    """Any authenticated caller (async: the admin token and cached keys skip the threadpool)."""
    ctx: AppContext = request.app.state.ctx
    if credentials is None:
        raise Unauthenticated("missing bearer token")
    token = credentials.credentials
    hit, known = principal_without_io(ctx, token)
    if hit:
        if known is None:
            raise Unauthenticated("unknown token")
        return known
    return await run_in_threadpool(resolve_principal, ctx, token)


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
