"""Reading rollout flags, with a short per-process cache so every process sees changes quickly."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.context import AppContext
from app.errors import Conflict, InvalidPayload, NotFound
from app.issue_types.flags import FlagKind, flag_name
from app.issue_types.registry import IssueType
from app.issue_types.service import refresh_if_stale
from app.models import Organization, RolloutFlag
from app.rollout.rules import FlagCache, FlagTable, Stage, flag_on
from app.rollout.schemas import FlagIn, FlagOut


def flag_cache(ctx: AppContext) -> FlagCache:
    """The context's flag cache."""
    if ctx.flag_cache is None:
        ctx.flag_cache = FlagCache(ctx.settings.registry_refresh_seconds)
    return ctx.flag_cache


def is_enabled(
    ctx: AppContext,
    session: Session,
    issue_type: IssueType,
    kind: FlagKind,
    organization_id: int,
    early_adopter: bool,
) -> bool:
    """Whether ``kind`` is on for this type and organization (released types: always)."""
    if issue_type.released:
        return True
    stage, orgs = (
        flag_cache(ctx)
        .table(lambda: _read_table(session))
        .get((issue_type.type_id, kind.value), (Stage.OFF, frozenset()))
    )
    return flag_on(stage, orgs, organization_id, early_adopter)


def _read_table(session: Session) -> FlagTable:
    """Every flag row, straight from the database (admin answers never use the cache)."""
    return {
        (r.type_id, r.kind): (Stage(r.stage), frozenset(r.organizations or []))
        for r in session.scalars(select(RolloutFlag))
    }


def _flag_out(issue_type: IssueType, kind: FlagKind, table: FlagTable) -> FlagOut:
    stage, orgs = table.get((issue_type.type_id, kind.value), (Stage.OFF, frozenset()))
    return FlagOut(
        name=flag_name(issue_type.slug, kind),
        type=issue_type.slug,
        type_id=issue_type.type_id,
        kind=kind,
        stage=stage,
        organizations=sorted(orgs),
    )


def list_flags(*, ctx: AppContext) -> list[FlagOut]:
    """Every flag of every unreleased type, by type_id and kind."""
    with ctx.db.read() as session:
        refresh_if_stale(ctx, session)
        table = _read_table(session)
    return [
        _flag_out(t, kind, table)
        for t in ctx.registry.types()
        if not t.released
        for kind in FlagKind
    ]


def set_flag(*, ctx: AppContext, slug: str, kind: FlagKind, data: FlagIn) -> FlagOut:
    """Set the stage and organization list of one flag of an unreleased type."""
    for attempt in range(2):  # a concurrent first write of the same flag makes us update instead
        with ctx.db.write() as session:
            refresh_if_stale(ctx, session)
            issue_type = ctx.registry.by_slug(slug)
            if issue_type is None:
                raise NotFound(f"issue type {slug!r} not found", code="issue_type_not_found")
            if issue_type.released:
                raise Conflict(
                    f"issue type {slug!r} is released: it has no flags",
                    code="issue_type_released",
                )
            if data.organizations:
                known = set(
                    session.scalars(
                        select(Organization.id).where(Organization.id.in_(data.organizations))
                    )
                )
                unknown = [o for o in data.organizations if o not in known]
                if unknown:
                    raise InvalidPayload(
                        f"unknown organizations {unknown}",
                        code="unknown_organization",
                        details=[{"field": "organizations", "message": f"unknown: {unknown}"}],
                    )
            row = session.get(RolloutFlag, (issue_type.type_id, kind.value))
            if row is None:
                row = RolloutFlag(type_id=issue_type.type_id, kind=kind.value)
                session.add(row)
            row.stage = data.stage.value
            row.organizations = list(data.organizations)
            row.updated_at = ctx.now()
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                if attempt == 0:
                    continue
                raise
        flag_cache(ctx).invalidate()
        table: FlagTable = {
            (issue_type.type_id, kind.value): (data.stage, frozenset(data.organizations))
        }
        return _flag_out(issue_type, kind, table)
    raise AssertionError("unreachable")  # pragma: no cover


def organization_features(*, ctx: AppContext, organization_id: int) -> list[str]:
    """The names of the flags that are on for an organization, sorted."""
    with ctx.db.read() as session:
        org = session.get(Organization, organization_id)
        if org is None:
            raise NotFound(
                f"organization {organization_id} not found", code="organization_not_found"
            )
        early_adopter = org.early_adopter
        refresh_if_stale(ctx, session)
        table = _read_table(session)
    names = [
        flag_name(t.slug, kind)
        for t in ctx.registry.types()
        if not t.released
        for kind in FlagKind
        if flag_on(
            *table.get((t.type_id, kind.value), (Stage.OFF, frozenset())),
            organization_id,
            early_adopter,
        )
    ]
    return sorted(names)
