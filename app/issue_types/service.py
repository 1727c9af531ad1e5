"""Loading issue types: plugins from entry points and API-registered rows from the database."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from importlib.metadata import entry_points

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import AppContext
from app.issue_types import builtins  # noqa: F401  (defining the classes registers them)
from app.issue_types.registry import (
    Category,
    CreationQuota,
    IssueType,
    NoiseConfig,
    Registry,
)
from app.models import Category as CategoryRow
from app.models import IssueTypeRow

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "issue_platform.issue_types"
_loaded_plugins: set[str] = set()


def load_plugins() -> list[str]:
    """Import every ``issue_platform.issue_types`` entry point; its classes register themselves.

    A duplicate ``type_id`` or ``slug`` raises ``DuplicateIssueType`` and stops the start.
    """
    names = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = f"{ep.name}={ep.value}"
        if key in _loaded_plugins:
            continue
        ep.load()
        _loaded_plugins.add(key)
        names.append(ep.name)
        log.info("loaded issue type plugin %s", key)
    return names


def row_to_issue_type(row: IssueTypeRow) -> IssueType:
    """The registry form of an API-registered type."""
    noise = None
    if row.noise_ignore_limit is not None and row.noise_expiry_seconds is not None:
        noise = NoiseConfig(row.noise_ignore_limit, timedelta(seconds=row.noise_expiry_seconds))
    quota = None
    if row.creation_quota_limit is not None and row.creation_quota_window_seconds is not None:
        quota = CreationQuota(row.creation_quota_limit, row.creation_quota_window_seconds)
    return IssueType(
        type_id=row.type_id,
        slug=row.slug,
        description=row.description,
        category_id=row.category_id,
        released=row.released,
        noise_config=noise,
        enable_auto_resolve=row.enable_auto_resolve,
        enable_escalation_detection=row.enable_escalation_detection,
        default_priority=row.default_priority,
        creation_quota=quota,
        in_default_search=row.in_default_search,
        source="api",
    )


def reload_registry(session: Session, registry: Registry) -> None:
    """Load API-registered types and categories into the registry."""
    types = [row_to_issue_type(r) for r in session.scalars(select(IssueTypeRow))]
    cats = [
        Category(r.id, r.slug, r.description, False) for r in session.scalars(select(CategoryRow))
    ]
    registry.set_api_entries(types, cats)


def refresh_if_stale(ctx: AppContext, session: Session) -> None:
    """Reload API-registered types when older than ``registry_refresh_seconds``.

    This is how a type registered on one process reaches every other process on the database.
    """
    now = time.monotonic()
    last = ctx.extras.get("registry_loaded_at")
    ttl = ctx.settings.registry_refresh_seconds
    if isinstance(last, float) and ttl > 0 and now - last < ttl:
        return
    reload_registry(session, ctx.registry)
    ctx.extras["registry_loaded_at"] = now
