"""Rendering console pages: the Jinja2 environment, security headers and cookies."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app import __version__
from app.auth.console_session import LOGIN_COOKIE, LOGIN_FORM_SECONDS, SESSION_COOKIE

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
COOKIE_PATH = "/ui"
# No script at all; styles only from the console's own stylesheet (no style attributes or
# elements); images only inline (the SVG charts are part of the page). Forms post back here only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals["version"] = __version__


def secure_headers(response: Response) -> Response:
    """Add the console's security headers to any answer under /ui."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def render(name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A template rendered as a page with the security headers."""
    html = templates.get_template(name).render(**context)
    return secure_headers(HTMLResponse(html, status_code=status))  # type: ignore[return-value]


def redirect(url: str) -> RedirectResponse:
    """A 303 (after a form, the browser then GETs ``url``)."""
    return secure_headers(RedirectResponse(url, status_code=303))  # type: ignore[return-value]


def to_login(request: Request) -> RedirectResponse:
    """Redirect to the login page, coming back here afterwards (GET pages only)."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method != "GET" or not safe_next(target):
        return redirect("/ui/login")
    return redirect("/ui/login?next=" + quote(target, safe=""))


def safe_next(target: str | None) -> bool:
    """Only console paths of this site (never another host) are followed after a login."""
    return (
        bool(target)
        and str(target).startswith("/ui/")
        and "//" not in str(target)
        and ("\\" not in str(target))
    )


def is_https(request: Request) -> bool:
    """Whether the page was served over HTTPS (the cookies are then ``Secure``)."""
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, value: str, *, max_age: int) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure over HTTPS, only sent to /ui."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def set_login_cookie(response: Response, request: Request, value: str) -> None:
    """The login form's CSRF cookie (double submit): Strict, short-lived."""
    response.set_cookie(
        LOGIN_COOKIE,
        value,
        max_age=LOGIN_FORM_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_cookies(response: Response, request: Request) -> None:
    """Remove both console cookies."""
    for name in (SESSION_COOKIE, LOGIN_COOKIE):
        response.delete_cookie(
            name, path=COOKIE_PATH, httponly=True, samesite="lax", secure=is_https(request)
        )


async def form_fields(request: Request) -> dict[str, str]:
    """An URL-encoded form body as a dict (the last value of a repeated field wins)."""
    body = await request.body()
    text = body.decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=50)
    except ValueError:
        return {}
    return {name: value for name, value in pairs if "\x00" not in value}
