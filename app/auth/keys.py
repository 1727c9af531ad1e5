"""What a bearer token stands for: the admin token or an API key, and the answer to a wrong one.

The use cases behind every entrance (the API's dependencies, the ingest fast path, the console's
login and sessions) resolve tokens here. It imports no FastAPI: ``app.auth.dependencies`` is the
thin HTTP layer over it.
"""

from __future__ import annotations

import hmac

from sqlalchemy import select

from app.auth.principal import Principal, hash_token
from app.auth.throttle import FailureLimit
from app.context import AppContext
from app.errors import DomainError, RateLimited, Unauthenticated
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
