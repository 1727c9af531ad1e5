"""Who is calling and what they may do: pure rules, no framework imports."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

SCOPES = ("ingest", "read", "triage")
TOKEN_PREFIX = "ipk_"  # noqa: S105  (a prefix, not a secret)


def hash_token(token: str) -> str:
    """SHA-256 hex of a token; the only form in which keys are stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(prefix: str = TOKEN_PREFIX) -> str:
    """A fresh random token (256 bits of entropy)."""
    return prefix + secrets.token_urlsafe(32)


class KeyRow(Protocol):
    """The parts of a stored API key a principal is made of."""

    @property
    def id(self) -> int: ...
    @property
    def organization_id(self) -> int: ...
    @property
    def scopes(self) -> Iterable[str]: ...
    @property
    def project_ids(self) -> Iterable[int] | None: ...


@dataclass(frozen=True)
class Principal:
    """The caller: the admin, or an API key of one organization."""

    is_admin: bool
    organization_id: int | None = None
    scopes: frozenset[str] = frozenset()
    project_ids: frozenset[int] | None = None  # None: every project of the organization
    key_id: int | None = None

    @classmethod
    def admin(cls) -> Principal:
        """The admin principal."""
        return cls(is_admin=True, scopes=frozenset(SCOPES))

    @classmethod
    def of_key(cls, key: KeyRow) -> Principal:
        """The principal of a (live) API key row."""
        return cls(
            is_admin=False,
            organization_id=key.organization_id,
            scopes=frozenset(key.scopes),
            project_ids=None if key.project_ids is None else frozenset(key.project_ids),
            key_id=key.id,
        )

    def has_scope(self, scope: str) -> bool:
        """Whether the caller carries the scope."""
        return self.is_admin or scope in self.scopes

    def may_access(self, organization_id: int, project_id: int | None = None) -> bool:
        """Whether the caller may act on this organization (and project)."""
        if self.is_admin:
            return True
        if organization_id != self.organization_id:
            return False
        return project_id is None or self.project_ids is None or project_id in self.project_ids

    @property
    def actor(self) -> str:
        """How activity rows name the caller."""
        return "admin" if self.is_admin else f"key:{self.key_id}"
