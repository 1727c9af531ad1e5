"""HTTP: the web console under /ui (HTML pages and plain forms; not part of the API schema)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from app.auth.console_session import LOGIN_COOKIE, SESSION_COOKIE, ConsoleUser, same_token
from app.console import pages, service
from app.context import AppContext
from app.dependencies import CtxDep
from app.errors import DomainError, PreconditionFailed
from app.schemas import IssueId

router = APIRouter(include_in_schema=False)


def _user(ctx: AppContext, request: Request) -> ConsoleUser | None:
    return service.user_for(ctx, request.cookies.get(SESSION_COOKIE))


def _error(user: ConsoleUser | None, exc: DomainError) -> Response:
    return pages.render("error.html", status=exc.status_code, user=user, error=exc)


@router.get("/")
def home() -> Response:
    """The console's stream."""
    return pages.redirect("/ui/issues")


@router.get("/ui")
@router.get("/ui/")
def ui_home() -> Response:
    """The console's stream."""
    return pages.redirect("/ui/issues")


@router.get("/ui/static/console.css")
def stylesheet() -> Response:
    """The console's only stylesheet."""
    response = FileResponse(pages.STATIC_DIR / "console.css", media_type="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _login_page(
    ctx: AppContext, request: Request, *, status: int = 200, message: str | None = None
) -> Response:
    cookie, csrf = service.signer(ctx).login_cookie()
    nxt = request.query_params.get("next")
    response = pages.render(
        "login.html",
        status=status,
        user=None,
        csrf_token=csrf,
        next=nxt if pages.safe_next(nxt) else None,
        message=message,
    )
    pages.set_login_cookie(response, request, cookie)
    return response


@router.get("/ui/login")
def login_form(request: Request, ctx: CtxDep) -> Response:
    """The login form: a token (API key or admin token)."""
    return _login_page(ctx, request)


@router.post("/ui/login")
async def login(request: Request, ctx: CtxDep) -> Response:
    """Check the token like the API does; on success set the session cookie and go on."""
    form = await pages.form_fields(request)
    expected = service.signer(ctx).login_csrf(request.cookies.get(LOGIN_COOKIE))
    if expected is None or not same_token(form.get("csrf_token"), expected):
        return _login_page(ctx, request, status=403, message="The form expired: try again.")
    host = request.client.host if request.client else None
    try:
        cookie = await run_in_threadpool(service.login, ctx, token=form.get("token", ""), host=host)
    except DomainError as exc:
        return _login_page(ctx, request, status=exc.status_code, message=exc.message)
    nxt = form.get("next")
    response = pages.redirect(nxt if nxt and pages.safe_next(nxt) else "/ui/issues")
    pages.set_session_cookie(
        response, request, cookie, max_age=ctx.settings.console_session_minutes * 60
    )
    response.delete_cookie(LOGIN_COOKIE, path=pages.COOKIE_PATH)
    return response


@router.post("/ui/logout")
async def logout(request: Request, ctx: CtxDep) -> Response:
    """End the session (the cookie is removed) and go back to the login page."""
    form = await pages.form_fields(request)
    user = await run_in_threadpool(_user, ctx, request)
    if user is not None:
        try:
            service.check_csrf(user, form.get("csrf_token"))
        except DomainError as exc:
            return _error(user, exc)
    response = pages.redirect("/ui/login")
    pages.clear_cookies(response, request)
    return response


@router.get("/ui/issues")
def stream(request: Request, ctx: CtxDep) -> Response:
    """The issue stream with the API's filters, sorts and cursor."""
    user = _user(ctx, request)
    if user is None:
        return pages.to_login(request)
    view = service.stream(ctx, user, request.query_params)
    opened = service.opened_by_short_id(view)
    if opened is not None:
        return pages.redirect(f"/ui/issues/{opened}")
    return pages.render("issues.html", status=view.status, user=user, view=view, request=request)


@router.get("/ui/issues/{issue_id}")
def issue_page(issue_id: IssueId, request: Request, ctx: CtxDep) -> Response:
    """One issue: evidence, chart, activity, occurrences and the triage form."""
    user = _user(ctx, request)
    if user is None:
        return pages.to_login(request)
    try:
        view = service.issue_view(
            ctx, user, issue_id, occurrences_cursor=request.query_params.get("occurrences")
        )
    except DomainError as exc:
        return _error(user, exc)
    saved = request.query_params.get("saved") == "1"
    return pages.render("issue.html", user=user, view=view, saved=saved)


@router.post("/ui/issues/{issue_id}/triage")
async def triage(issue_id: IssueId, request: Request, ctx: CtxDep) -> Response:
    """Apply the triage form through the service of `PATCH /issues/{id}`."""
    form = await pages.form_fields(request)
    user = await run_in_threadpool(_user, ctx, request)
    if user is None:
        return pages.to_login(request)
    try:
        await run_in_threadpool(service.triage_issue, ctx, user, issue_id, form)
    except PreconditionFailed:
        # Someone changed it since the page was drawn: show it as it is now, change nothing.
        try:
            view = await run_in_threadpool(service.issue_view, ctx, user, issue_id)
        except DomainError as exc:
            return _error(user, exc)
        return pages.render("issue.html", status=409, user=user, view=view, stale=True)
    except DomainError as exc:
        if exc.status_code in (403, 404):
            return _error(user, exc)
        try:
            view = await run_in_threadpool(service.issue_view, ctx, user, issue_id)
        except DomainError as again:
            return _error(user, again)
        return pages.render(
            "issue.html", status=exc.status_code, user=user, view=view, problem=exc.message
        )
    return pages.redirect(f"/ui/issues/{issue_id}?saved=1")


@router.get("/ui/types")
def types(request: Request, ctx: CtxDep) -> Response:
    """Registered issue types with category, release state, flags and noise config."""
    user = _user(ctx, request)
    if user is None:
        return pages.to_login(request)
    return pages.render("types.html", user=user, rows=service.types_view(ctx, user))


@router.get("/ui/pending")
def pending(request: Request, ctx: CtxDep) -> Response:
    """Noise windows waiting for their threshold."""
    user = _user(ctx, request)
    if user is None:
        return pages.to_login(request)
    windows = service.pending_view(ctx, user)
    return pages.render("pending.html", user=user, windows=windows, now=ctx.now())


@router.get("/ui/projects")
def projects(request: Request, ctx: CtxDep) -> Response:
    """Projects the caller may read, with their auto-resolve age and retention."""
    user = _user(ctx, request)
    if user is None:
        return pages.to_login(request)
    return pages.render("projects.html", user=user, rows=service.projects_view(ctx, user))
