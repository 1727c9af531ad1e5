"""Use cases of the web console, built on the API's own services.

The stream, an issue, its activity, forecast and occurrences, the triage update and the pending
windows are read and changed through the same service functions as the JSON API, so tenancy,
scopes, visibility flags and the lifecycle rules are never written twice. This module adds only
what a page needs besides: sessions, hourly counts for the charts (one query per page) and the
reading of form fields.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import select

from app.auth.console_session import ConsoleUser, SessionClaim, Signer, load_secret, same_token
from app.auth.keys import refuse_token, resolve_principal
from app.auth.principal import Principal, hash_token
from app.console import charts
from app.context import AppContext
from app.errors import DomainError, Forbidden, InvalidPayload, RateLimited, Unauthenticated
from app.issue_types.flags import FlagKind
from app.issue_types.registry import PRIORITY_NAMES
from app.issue_types.schemas import IssueTypeOut
from app.issue_types.service import issue_type_out, refresh_if_stale
from app.issues import service as issues
from app.issues.schemas import ActivityOut, IssueOut
from app.issues.serialize import etag
from app.issues.status import (
    STATUS_NAMES,
    SUBSTATUS_NAMES,
    VALID_PAIRS,
    GroupStatus,
    GroupSubStatus,
)
from app.lifecycle.forecast import epoch_hour
from app.models import ApiKey, HourlyCount, Organization, Project
from app.occurrences import reads
from app.occurrences import reads as occurrence_reads
from app.occurrences.schemas import OccurrenceOut, PendingOut
from app.rollout.service import is_enabled, list_flags
from app.triage import service as triage
from app.triage.schemas import IssueUpdateIn

SESSION_CACHE_SIZE = 10_000
STREAM_PAGE = 25
OCCURRENCES_PAGE = 10
ACTIVITY_PAGE = 50
# A substatus to use when the form's does not fit the chosen status (no JavaScript re-filters
# the second select): the one a person most likely means.
DEFAULT_SUBSTATUS = {
    "unresolved": "ongoing",
    "ignored": "archived_until_escalating",
}


def signer(ctx: AppContext) -> Signer:
    """The process's cookie signer (its secret loaded once)."""
    if ctx.console_signer is None:
        ctx.console_signer = Signer(
            load_secret(ctx.settings), max_age_seconds=ctx.settings.console_session_minutes * 60
        )
    return ctx.console_signer


# Sessions


def login(ctx: AppContext, *, token: str, host: str | None) -> str:
    """A session cookie for a valid token with the ``read`` scope.

    Wrong token: 401 (429 once the address used its failure budget, as on the API).
    A key without ``read``: 403, since no console page would open.
    """
    token = token.strip()
    if not token or len(token) > 512:
        raise _wrong_token(ctx, host)
    principal = resolve_principal(ctx, token)
    if principal is None:
        raise _wrong_token(ctx, host)
    if not principal.has_scope("read"):
        raise Forbidden("this key has no read scope: the console needs one")
    sign = signer(ctx)
    if principal.is_admin:
        fingerprint = sign.fingerprint(token)
    else:
        fingerprint = sign.fingerprint(hash_token(token))
    cookie, _ = sign.session_cookie(principal.key_id, fingerprint)
    return cookie


def _wrong_token(ctx: AppContext, host: str | None) -> DomainError:
    error = refuse_token(ctx, host)
    if isinstance(error, RateLimited):
        return error
    return Unauthenticated("unknown token: give an API key or the admin token")


def user_for(ctx: AppContext, cookie: str | None) -> ConsoleUser | None:
    """The person a session cookie stands for; None if it is invalid, expired or revoked."""
    sign = signer(ctx)
    claim = sign.read_session(cookie)
    if claim is None:
        return None
    if claim.key_id is None:
        admin = ctx.admin_token
        if admin and same_token(claim.fingerprint, sign.fingerprint(admin)):
            return ConsoleUser(Principal.admin(), claim.csrf, "admin")
        return None
    return _key_user(ctx, sign, claim)


def _key_user(ctx: AppContext, sign: Signer, claim: SessionClaim) -> ConsoleUser | None:
    """The key's user, cached like the API's key look-ups (``ISSUE_PLATFORM_AUTH_CACHE_SECONDS``).

    A revocation clears the key cache, which starts a new generation: entries of an older one
    are not used, so on the revoking process the sessions end at once, elsewhere within the TTL.
    """
    cache = ctx.console_sessions
    entry_key = (claim.key_id, claim.fingerprint)
    generation = ctx.key_cache.generation
    hit = cache.get(entry_key)
    if hit is not None and hit[0] > time.monotonic() and hit[1] == generation:
        user = hit[2]
        return None if user is None else replace(user, csrf=claim.csrf)
    user = _read_key_user(ctx, sign, claim)
    ttl = ctx.settings.auth_cache_seconds
    if ttl > 0:
        if len(cache) >= SESSION_CACHE_SIZE:
            cache.clear()
        cache[entry_key] = (time.monotonic() + ttl, generation, user)
    return user


def _read_key_user(ctx: AppContext, sign: Signer, claim: SessionClaim) -> ConsoleUser | None:
    with ctx.db.read() as session:
        row = session.execute(
            select(ApiKey, Organization.slug)
            .join(Organization, Organization.id == ApiKey.organization_id)
            .where(ApiKey.id == claim.key_id, ApiKey.revoked_at.is_(None))
        ).first()
        if row is None:
            return None
        key, org_slug = row.tuple()
        if not same_token(claim.fingerprint, sign.fingerprint(key.token_hash)):
            return None
        principal = Principal.of_key(key)
        return ConsoleUser(principal, claim.csrf, f"key “{key.name}” of {org_slug}")


def check_csrf(user: ConsoleUser, given: str | None) -> None:
    """403 ``csrf_failed`` unless the form carries the session's CSRF token."""
    if not same_token(given, user.csrf):
        raise Forbidden("the form is stale or forged: reload the page", code="csrf_failed")


# The stream


@dataclass(frozen=True)
class StreamRow:
    """One issue of the stream page."""

    issue: IssueOut
    spark: charts.Sparkline
    last_seen_ago: str
    last_seen_exact: str


@dataclass
class StreamView:
    """What the stream page shows."""

    rows: list[StreamRow]
    next_cursor: str | None
    filters: dict[str, str]
    types: list[str]
    projects: list[tuple[int, str]]
    error: str | None = None
    status: int = 200


STREAM_FIELDS = ("type", "status", "project", "priority", "query", "sort")


def stream(ctx: AppContext, user: ConsoleUser, params: Mapping[str, str]) -> StreamView:
    """A page of the stream through ``GET /issues``'s service, with a sparkline per issue."""
    values = {name: params.get(name, "").strip() for name in STREAM_FIELDS}
    cursor = params.get("cursor") or None
    view = StreamView(rows=[], next_cursor=None, filters=values, types=[], projects=[])
    try:
        filters = issues.IssueFilters(
            types=[values["type"]] if values["type"] else None,
            statuses=[values["status"]] if values["status"] else None,
            projects=[_project_number(values["project"])] if values["project"] else None,
            priorities=[values["priority"]] if values["priority"] else None,
            query=values["query"][:500] or None,
            sort=values["sort"] or "last_seen",
            limit=STREAM_PAGE,
            cursor=cursor,
            with_latest_occurrence=False,  # the rows show no evidence
        )
        page, view.next_cursor = issues.list_issues(ctx, principal=user.principal, filters=filters)
    except DomainError as exc:
        view.error, view.status = exc.message, exc.status_code
        page = None
    now = ctx.now()
    last_hour = epoch_hour(now)
    with ctx.db.read() as session:
        view.projects = _projects(session, user.principal)
        counts = _hourly_counts(
            session,
            [i.id for i in page.data] if page else [],
            first_hour=last_hour - charts.SPARK_HOURS + 1,
            last_hour=last_hour,
        )
        view.types = [t.slug for t in _types_for(ctx, session, user.principal)]
    hours = range(last_hour - charts.SPARK_HOURS + 1, last_hour + 1)
    for issue in page.data if page else []:
        per_hour = counts.get(issue.id, {})
        view.rows.append(
            StreamRow(
                issue=issue,
                spark=charts.sparkline([per_hour.get(h, 0) for h in hours]),
                last_seen_ago=charts.relative_time(issue.last_seen, now),
                last_seen_exact=charts.exact_time(issue.last_seen),
            )
        )
    return view


def opened_by_short_id(view: StreamView) -> int | None:
    """The issue to open when the search is exactly one issue's short id (``DEFAULT-7``)."""
    query = view.filters.get("query", "").upper()
    if not query or len(view.rows) != 1 or view.rows[0].issue.short_id != query:
        return None
    return view.rows[0].issue.id


def _project_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidPayload("project must be a project id (a number)")
    return int(text)


def _projects(session: Any, principal: Principal) -> list[tuple[int, str]]:
    """The projects of the filter's list: those the caller may read (one query)."""
    stmt = select(Project.id, Project.slug).order_by(Project.slug).limit(500)
    if not principal.is_admin:
        stmt = stmt.where(Project.organization_id == principal.organization_id)
    allowed = principal.project_ids
    return [(pid, slug) for pid, slug in session.execute(stmt) if allowed is None or pid in allowed]


def _hourly_counts(
    session: Any, issue_ids: list[int], *, first_hour: int, last_hour: int
) -> dict[int, dict[int, int]]:
    """Hourly counts of many issues in one query (the page's sparklines, never one per row)."""
    out: dict[int, dict[int, int]] = {}
    if not issue_ids:
        return out
    rows = session.execute(
        select(HourlyCount.group_id, HourlyCount.hour, HourlyCount.count).where(
            HourlyCount.group_id.in_(issue_ids),
            HourlyCount.hour >= first_hour,
            HourlyCount.hour <= last_hour,
        )
    )
    for group_id, hour, count in rows:
        out.setdefault(group_id, {})[hour] = count
    return out


def _types_for(ctx: AppContext, session: Any, principal: Principal) -> list[Any]:
    """Types the caller may see: all for the admin, else released ones and those visible."""
    types = ctx.registry.types()
    if principal.is_admin or all(t.released for t in types):
        return list(types)
    org = session.get(Organization, principal.organization_id)
    if org is None:
        return [t for t in types if t.released]
    return [
        t for t in types if is_enabled(ctx, session, t, FlagKind.VISIBLE, org.id, org.early_adopter)
    ]


# One issue


@dataclass
class IssueView:
    """What an issue page shows."""

    issue: IssueOut
    etag: str
    evidence: list[Any]
    evidence_json: str | None
    platform: str | None
    tags: list[tuple[str, str]]
    chart: charts.HourlyChart
    forecast_shown: bool
    activity: list[ActivityOut]
    occurrences: list[OccurrenceOut]
    next_occurrences: str | None
    first_seen_ago: str
    last_seen_ago: str
    now: datetime
    occurrences_paged: bool = False
    statuses: list[str] = field(default_factory=lambda: list(STATUS_NAMES.values()))
    substatuses: list[str] = field(default_factory=lambda: list(SUBSTATUS_NAMES.values()))
    priorities: list[str] = field(default_factory=lambda: list(PRIORITY_NAMES.values()))


def issue_view(
    ctx: AppContext, user: ConsoleUser, issue_id: int, *, occurrences_cursor: str | None = None
) -> IssueView:
    """Everything an issue page shows, through the API's services (other tenants: 404)."""
    principal = user.principal
    issue, group = issues.get_issue(ctx, principal=principal, issue_id=issue_id)
    tag = etag(group)
    try:
        occ_page = occurrence_reads.list_issue_occurrences(
            ctx, principal=principal, issue_id=issue_id, limit=OCCURRENCES_PAGE,
            cursor=occurrences_cursor,
        )  # fmt: skip
    except InvalidPayload:
        occ_page = occurrence_reads.list_issue_occurrences(
            ctx, principal=principal, issue_id=issue_id, limit=OCCURRENCES_PAGE, cursor=None
        )
    activity = triage.list_activity(
        ctx=ctx, principal=principal, issue_id=issue_id, limit=ACTIVITY_PAGE, cursor=None
    )
    forecast = triage.get_forecast(ctx=ctx, principal=principal, issue_id=issue_id)
    latest = issue.latest_occurrence
    platform: str | None = None
    tags: list[tuple[str, str]] = []
    if latest is not None:
        try:
            stored = reads.get_occurrence(
                ctx, principal=principal, project_id=issue.project_id, occurrence_id=latest.id
            )
        except DomainError:
            stored = None
        if stored is not None and stored.event:
            platform, tags = _event_essentials(stored.event)
    now = ctx.now()
    last_hour = epoch_hour(now)
    with ctx.db.read() as session:
        counts = _hourly_counts(
            session, [issue.id], first_hour=last_hour - charts.CHART_HOURS + 1, last_hour=last_hour
        ).get(issue.id, {})
    window = charts.hour_counts_window(counts, last_hour=last_hour, hours=charts.CHART_HOURS)
    forecast_shown = issue.substatus == "archived_until_escalating" and bool(forecast.ceilings)
    chart = charts.hourly_chart(
        window,
        ceilings=forecast.ceilings if forecast_shown else (),
        start_date=date.fromisoformat(forecast.start_date)
        if forecast_shown and forecast.start_date
        else None,
    )
    evidence: list[Any] = []
    evidence_json = None
    if latest is not None:
        evidence = sorted(latest.evidence_display, key=lambda e: not e.important)
        if latest.evidence_data:
            evidence_json = orjson.dumps(
                latest.evidence_data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
            ).decode()
    return IssueView(
        issue=issue,
        etag=tag,
        evidence=evidence,
        evidence_json=evidence_json,
        platform=platform,
        tags=tags,
        chart=chart,
        forecast_shown=forecast_shown,
        activity=activity.data,
        occurrences=occ_page.data,
        next_occurrences=occ_page.next_cursor,
        first_seen_ago=charts.relative_time(issue.first_seen, now),
        last_seen_ago=charts.relative_time(issue.last_seen, now),
        now=now,
        occurrences_paged=occurrences_cursor is not None,
    )


def _event_essentials(event: Mapping[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
    platform = event.get("platform")
    raw = event.get("tags")
    tags: list[tuple[str, str]] = []
    if isinstance(raw, dict):
        tags = [(str(k), str(v)) for k, v in raw.items()]
    elif isinstance(raw, list):
        tags = [(str(p[0]), str(p[1])) for p in raw if isinstance(p, list | tuple) and len(p) == 2]
    return (str(platform) if platform is not None else None), sorted(tags)


# Triage


def triage_issue(
    ctx: AppContext, user: ConsoleUser, issue_id: int, form: Mapping[str, str]
) -> None:
    """Apply a triage form through ``PATCH /issues/{id}``'s service.

    Only the fields that differ from the issue are sent, so a form showing the current values
    changes nothing it was not asked to. The form's ``etag`` is the ``If-Match``: an issue that
    changed since the page was drawn raises 412 and nothing is applied. CSRF first (403
    ``csrf_failed``), then the ``triage`` scope (403 ``forbidden``).
    """
    check_csrf(user, form.get("csrf_token"))
    if not user.can_triage:
        raise Forbidden("scope 'triage' required")
    if_match = form.get("etag", "").strip()
    if not if_match:
        raise InvalidPayload("the form has no etag: reload the page", code="missing_etag")
    issue, _ = issues.get_issue(ctx, principal=user.principal, issue_id=issue_id)
    changes = _changes(issue, form)
    try:
        update = IssueUpdateIn(**changes)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first.get("loc", ())) or "form"
        raise InvalidPayload(f"{name}: {first.get('msg', 'invalid')}") from None
    triage.update_issue(
        ctx=ctx, principal=user.principal, issue_id=issue_id, changes=update, if_match=if_match
    )


def _changes(issue: IssueOut, form: Mapping[str, str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    status = form.get("status", "").strip()
    if status:
        substatus: str | None = form.get("substatus", "").strip() or None
        try:
            pairs = VALID_PAIRS[GroupStatus[status.upper()]]
            fits = (GroupSubStatus[substatus.upper()] if substatus else None) in pairs
        except KeyError:
            fits = True  # unknown names: the service says what is wrong with them
        if status == "resolved":
            substatus = None
        elif not fits or substatus is None:
            substatus = DEFAULT_SUBSTATUS.get(status, substatus)
        if (status, substatus) != (issue.status, issue.substatus):
            changes["status"] = status
            changes["substatus"] = substatus
    priority = form.get("priority", "").strip()
    if priority and priority != issue.priority:
        changes["priority"] = priority
    if "assignee" in form:
        assignee = form["assignee"].strip() or None
        if assignee != issue.assignee:
            changes["assignee"] = assignee
    return changes


# Types and pending windows


@dataclass(frozen=True)
class TypeRow:
    """One issue type and its rollout flags as the types page shows them."""

    type: IssueTypeOut
    flags: list[tuple[str, str, list[int]]]


def types_view(ctx: AppContext, user: ConsoleUser) -> list[TypeRow]:
    """Registered types the caller may see, with their flags (organization lists: admin only)."""
    with ctx.db.read() as session:
        refresh_if_stale(ctx, session)
        visible = _types_for(ctx, session, user.principal)
    flags: dict[int, list[tuple[str, str, list[int]]]] = {}
    for flag in list_flags(ctx=ctx):
        orgs = flag.organizations if user.principal.is_admin else []
        flags.setdefault(flag.type_id, []).append((flag.kind.value, flag.stage.value, orgs))
    return [TypeRow(issue_type_out(t, ctx.registry), flags.get(t.type_id, [])) for t in visible]


@dataclass(frozen=True)
class ProjectRow:
    """A project as the projects page lists it."""

    id: int
    slug: str
    name: str
    organization_id: int
    organization_slug: str
    resolve_age_hours: int
    retention_days: int


def projects_view(ctx: AppContext, user: ConsoleUser) -> list[ProjectRow]:
    """The projects the caller may read (those of the stream's project filter), by id."""
    principal = user.principal
    stmt = (
        select(
            Project.id,
            Project.slug,
            Project.name,
            Project.organization_id,
            Organization.slug,
            Project.resolve_age_hours,
            Project.retention_days,
        )
        .join(Organization, Organization.id == Project.organization_id)
        .order_by(Project.id)
        .limit(500)
    )
    if not principal.is_admin:
        stmt = stmt.where(Project.organization_id == principal.organization_id)
    allowed = principal.project_ids
    if allowed is not None:
        stmt = stmt.where(Project.id.in_(sorted(allowed)))
    with ctx.db.read() as session:
        return [ProjectRow(*row) for row in session.execute(stmt)]


def pending_view(ctx: AppContext, user: ConsoleUser) -> list[PendingOut]:
    """Open noise windows of the caller's projects, through ``GET /pending``'s service."""
    return reads.list_pending(
        ctx, principal=user.principal, projects=None, types=None, limit=200
    ).data
