"""Loading issue types: plugins from entry points and API-registered rows from the database."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.context import AppContext
from app.errors import Conflict, InvalidPayload, NotFound
from app.issue_types.flags import FlagKind, flag_name
from app.issue_types.registry import (
    BUILTIN_CATEGORIES,
    PRIORITY_NAMES,
    Category,
    CreationQuota,
    IssueType,
    NoiseConfig,
    Registry,
    parse_priority,
)
from app.issue_types.schemas import (
    CategoryIn,
    CategoryOut,
    CreationQuotaOut,
    IssueTypeIn,
    IssueTypeOut,
    NoiseConfigOut,
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


def registry_stale(ctx: AppContext) -> bool:
    """Whether the API-registered types are older than ``registry_refresh_seconds``."""
    last = ctx.registry_loaded_at
    ttl = ctx.settings.registry_refresh_seconds
    return last is None or ttl <= 0 or time.monotonic() - last >= ttl


def refresh_if_stale(ctx: AppContext, session: Session) -> None:
    """Reload API-registered types when older than ``registry_refresh_seconds``.

    This is how a type registered on one process reaches every other process on the database.
    """
    if not registry_stale(ctx):
        return
    reload_registry(session, ctx.registry)
    ctx.registry_loaded_at = time.monotonic()


def _reload_now(ctx: AppContext) -> None:
    """Reload the registry after a local write so this process sees it at once."""
    with ctx.db.read() as session:
        reload_registry(session, ctx.registry)
    ctx.registry_loaded_at = time.monotonic()


# Answers


def category_out(category: Category) -> CategoryOut:
    """A category as the API shows it."""
    return CategoryOut(
        id=category.id,
        slug=category.slug,
        description=category.description,
        builtin=category.builtin,
    )


def issue_type_out(issue_type: IssueType, registry: Registry) -> IssueTypeOut:
    """An issue type as the API shows it."""
    category = registry.category(issue_type.category_id)
    noise = issue_type.noise_config
    quota = issue_type.creation_quota
    return IssueTypeOut(
        type_id=issue_type.type_id,
        slug=issue_type.slug,
        description=issue_type.description,
        category=category.slug if category else str(issue_type.category_id),
        category_id=issue_type.category_id,
        released=issue_type.released,
        noise_config=(
            NoiseConfigOut(ignore_limit=noise.ignore_limit, expiry_seconds=noise.expiry_seconds)
            if noise
            else None
        ),
        enable_auto_resolve=issue_type.enable_auto_resolve,
        enable_escalation_detection=issue_type.enable_escalation_detection,
        default_priority=PRIORITY_NAMES[issue_type.default_priority],
        creation_quota=(
            CreationQuotaOut(limit=quota.limit, window_seconds=quota.window_seconds)
            if quota
            else None
        ),
        in_default_search=issue_type.in_default_search,
        source=issue_type.source,
        read_only=issue_type.read_only,
        flags=[] if issue_type.released else [flag_name(issue_type.slug, k) for k in FlagKind],
    )


# Categories


def list_categories(*, ctx: AppContext) -> list[CategoryOut]:
    """Every category: built-ins and those registered through the API."""
    with ctx.db.read() as session:
        refresh_if_stale(ctx, session)
    return [category_out(c) for c in ctx.registry.categories()]


def create_category(*, ctx: AppContext, data: CategoryIn) -> CategoryOut:
    """Register a category; an id or slug already in use (built-ins too) → 409."""
    conflict = Conflict(
        f"category id {data.id} or slug {data.slug!r} already exists", code="category_exists"
    )
    if any(c.id == data.id or c.slug == data.slug for c in BUILTIN_CATEGORIES):
        raise conflict
    with ctx.db.write() as session:
        taken = session.scalar(
            select(CategoryRow.id).where(
                or_(CategoryRow.id == data.id, CategoryRow.slug == data.slug)
            )
        )
        if taken is not None:
            raise conflict
        session.add(
            CategoryRow(
                id=data.id, slug=data.slug, description=data.description, created_at=ctx.now()
            )
        )
        try:
            session.commit()
        except IntegrityError:
            raise conflict from None
    _reload_now(ctx)
    return category_out(Category(data.id, data.slug, data.description, False))


# Issue types


def _category_ref(registry: Registry, ref: int | str) -> Category:
    category = registry.category(ref)
    if category is None:
        raise InvalidPayload(
            f"unknown category {ref!r}",
            code="unknown_category",
            details=[{"field": "category", "message": "no category with this id or slug"}],
        )
    return category


def _issue_type(registry: Registry, slug: str) -> IssueType:
    issue_type = registry.by_slug(slug)
    if issue_type is None:
        raise NotFound(f"issue type {slug!r} not found", code="issue_type_not_found")
    return issue_type


def list_issue_types(*, ctx: AppContext, category: str | None = None) -> list[IssueTypeOut]:
    """Every registered type by type_id, optionally of one category (id or slug)."""
    with ctx.db.read() as session:
        refresh_if_stale(ctx, session)
    registry = ctx.registry
    types = registry.types()
    if category is not None:
        category_id = _category_ref(registry, category).id
        types = [t for t in types if t.category_id == category_id]
    return [issue_type_out(t, registry) for t in types]


def get_issue_type(*, ctx: AppContext, slug: str) -> IssueTypeOut:
    """One type by slug (404 ``issue_type_not_found``)."""
    with ctx.db.read() as session:
        refresh_if_stale(ctx, session)
    return issue_type_out(_issue_type(ctx.registry, slug), ctx.registry)


def _apply(row: IssueTypeRow, fields: dict[str, Any]) -> None:
    """Copy validated attributes (as the schemas dump them) onto a row."""
    for name, value in fields.items():
        if name == "noise_config":
            row.noise_ignore_limit = value["ignore_limit"] if value else None
            row.noise_expiry_seconds = value["expiry_seconds"] if value else None
        elif name == "creation_quota":
            row.creation_quota_limit = value["limit"] if value else None
            row.creation_quota_window_seconds = value["window_seconds"] if value else None
        elif name == "default_priority":
            row.default_priority = parse_priority(value)
        else:
            setattr(row, name, value)


def create_issue_type(*, ctx: AppContext, data: IssueTypeIn) -> IssueTypeOut:
    """Register a type; its type_id and slug must be free among all registered types."""
    conflict = Conflict(
        f"issue type {data.type_id} or slug {data.slug!r} already exists",
        code="issue_type_exists",
    )
    with ctx.db.write() as session:
        # Read the registry inside this transaction so the checks see every committed type.
        reload_registry(session, ctx.registry)
        category = _category_ref(ctx.registry, data.category)
        if ctx.registry.get(data.type_id) or ctx.registry.by_slug(data.slug):
            raise conflict
        taken = session.scalar(
            select(IssueTypeRow.type_id).where(
                or_(IssueTypeRow.type_id == data.type_id, IssueTypeRow.slug == data.slug)
            )
        )
        if taken is not None:
            raise conflict
        now = ctx.now()
        row = IssueTypeRow(
            type_id=data.type_id, category_id=category.id, created_at=now, updated_at=now
        )
        _apply(row, data.model_dump(exclude={"type_id", "category"}))
        issue_type = row_to_issue_type(row)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            raise conflict from None
    _reload_now(ctx)
    return issue_type_out(issue_type, ctx.registry)


def update_issue_type(*, ctx: AppContext, slug: str, changes: dict[str, Any]) -> IssueTypeOut:
    """Change an API-registered type; code types are read-only, identity fields immutable."""
    with ctx.db.write() as session:
        reload_registry(session, ctx.registry)
        current = _issue_type(ctx.registry, slug)
        if current.read_only:
            raise Conflict(
                f"issue type {slug!r} is defined in code; only its rollout flags can change",
                code="issue_type_read_only",
            )
        changed = [
            name
            for name, value in (
                ("type_id", changes.get("type_id", current.type_id)),
                ("slug", changes.get("slug", current.slug)),
            )
            if value != getattr(current, name)
        ]
        if "category" in changes:
            ref = ctx.registry.category(changes["category"])
            if ref is None or ref.id != current.category_id:
                changed.append("category")
        if changed:
            raise InvalidPayload(
                f"{', '.join(changed)} cannot be changed",
                code="immutable_field",
                details=[{"field": name, "message": "immutable field"} for name in changed],
            )
        row = session.get(IssueTypeRow, current.type_id)
        if row is None:  # deleted by hand between the reload and now
            raise NotFound(f"issue type {slug!r} not found", code="issue_type_not_found")
        _apply(row, {k: v for k, v in changes.items() if k not in ("type_id", "slug", "category")})
        row.updated_at = ctx.now()
        issue_type = row_to_issue_type(row)
        session.commit()
    _reload_now(ctx)
    return issue_type_out(issue_type, ctx.registry)


def type_ids_for_slugs(registry: Registry, slugs: list[str]) -> set[int]:
    """The type ids of these slugs; an unknown slug is 422 ``unknown_issue_type``."""
    type_ids: set[int] = set()
    for slug in slugs:
        issue_type = registry.by_slug(slug)
        if issue_type is None:
            raise InvalidPayload(
                f"unknown issue type {slug!r}", code="unknown_issue_type", details={"field": "type"}
            )
        type_ids.add(issue_type.type_id)
    return type_ids
