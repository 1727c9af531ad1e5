"""The web console (/ui) through the HTTP client: login, redirects, pages, escaping, CSRF, ETags,
tenancy and scopes. Runs on SQLite and PostgreSQL like every storage test.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.auth.console_session import LOGIN_COOKIE, SESSION_COOKIE, Signer, load_secret
from app.auth.principal import hash_token
from app.config import Settings
from app.lifecycle.forecast import epoch_hour
from app.models import Forecast
from tests.builders import (
    add_occurrences,
    ctx_of,
    group_row,
    make_group,
    make_key,
    make_org_with_project,
    make_project,
    occurrence,
    set_hourly_counts,
)
from tests.conftest import ADMIN_TOKEN, auth
from tests.test_tenancy_matrix import _endpoints

PAGES = ["/ui/issues", "/ui/issues/{id}", "/ui/types", "/ui/pending", "/ui/projects"]


@pytest.fixture(autouse=True)
def started(client: TestClient) -> None:
    """The application's lifespan is running (else every request answers 503)."""


def _field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no field {name}"
    return html.unescape(match.group(1))


def _sets_session(answer: Any) -> bool:
    return any(c.startswith(f"{SESSION_COOKIE}=") for c in answer.headers.get_list("set-cookie"))


def browser(app: FastAPI, *, https: bool = False) -> TestClient:
    """A client with its own cookie jar, like a separate browser."""
    base = "https://testserver" if https else "http://testserver"
    return TestClient(app, base_url=base, raise_server_exceptions=False, follow_redirects=False)


def login(app: FastAPI, token: str = ADMIN_TOKEN) -> TestClient:
    """A browser logged in with ``token``."""
    b = browser(app)
    form = b.get("/ui/login")
    answer = b.post(
        "/ui/login", data={"token": token, "csrf_token": _field(form.text, "csrf_token")}
    )
    assert answer.status_code == 303, answer.text
    return b


def triage_form(b: TestClient, issue_id: int) -> dict[str, str]:
    """The hidden fields of an issue page's triage form."""
    page = b.get(f"/ui/issues/{issue_id}").text
    return {"csrf_token": _field(page, "csrf_token"), "etag": _field(page, "etag")}


def ingest(admin: TestClient, **overrides: Any) -> int:
    answer = admin.post("/occurrences", json=occurrence(**overrides))
    assert answer.status_code == 202, answer.text
    return int(answer.json()["issue_id"])


# Login, sessions, redirects


def test_root_redirects_to_the_stream(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code in (302, 303, 307)
    assert answer.headers["location"] == "/ui/issues"


def test_every_page_without_a_session_redirects_to_the_login(
    admin: TestClient, app: FastAPI
) -> None:
    issue_id = ingest(admin)
    b = browser(app)
    for page in PAGES:
        url = page.format(id=issue_id)
        answer = b.get(url)
        assert answer.status_code == 303, url
        assert answer.headers["location"].startswith("/ui/login"), url
    # A form post without a session changes nothing.
    before = group_row(ctx_of(app), issue_id).version
    answer = b.post(f"/ui/issues/{issue_id}/triage", data={"status": "resolved"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login"
    assert group_row(ctx_of(app), issue_id).version == before


def test_login_form_has_a_token_field_and_a_hidden_csrf_token(app: FastAPI) -> None:
    b = browser(app)
    page = b.get("/ui/login")
    assert page.status_code == 200
    assert 'name="token"' in page.text and 'type="password"' in page.text
    assert '<label for="token">' in page.text
    assert _field(page.text, "csrf_token")
    assert LOGIN_COOKIE in page.headers["set-cookie"]


def test_admin_login_sets_a_signed_httponly_cookie_without_the_token(app: FastAPI) -> None:
    b = browser(app)
    form = b.get("/ui/login")
    answer = b.post(
        "/ui/login", data={"token": ADMIN_TOKEN, "csrf_token": _field(form.text, "csrf_token")}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/issues"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/ui" in attributes
    assert "secure" not in attributes  # plain HTTP here
    value = b.cookies[SESSION_COOKIE]
    assert ADMIN_TOKEN not in value and hash_token(ADMIN_TOKEN) not in value
    assert b.get("/ui/issues").status_code == 200


def test_login_over_https_sets_a_secure_cookie(app: FastAPI) -> None:
    b = browser(app, https=True)
    form = b.get("/ui/login")
    answer = b.post(
        "/ui/login", data={"token": ADMIN_TOKEN, "csrf_token": _field(form.text, "csrf_token")}
    )
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "secure" in [a.strip().lower() for a in cookie.split(";")]


def test_key_login_keeps_only_a_reference_to_the_key(app: FastAPI, client: TestClient) -> None:
    token = make_key(ctx_of(app), scopes=("read",))
    b = login(app, token)
    value = b.cookies[SESSION_COOKIE]
    assert token not in value and hash_token(token) not in value
    page = b.get("/ui/issues")
    assert page.status_code == 200
    assert "read-only" in page.text


@pytest.mark.parametrize("token", ["wrong-token", "", "ipk_" + "x" * 40])
def test_a_wrong_token_shows_the_form_again_without_a_cookie(app: FastAPI, token: str) -> None:
    b = browser(app)
    form = b.get("/ui/login")
    answer = b.post(
        "/ui/login", data={"token": token, "csrf_token": _field(form.text, "csrf_token")}
    )
    assert answer.status_code == 401
    assert "unknown token" in answer.text
    assert not _sets_session(answer)
    assert b.get("/ui/issues").status_code == 303


def test_login_without_its_csrf_token_is_refused(app: FastAPI) -> None:
    b = browser(app)
    b.get("/ui/login")
    for data in ({"token": ADMIN_TOKEN}, {"token": ADMIN_TOKEN, "csrf_token": "forged"}):
        answer = b.post("/ui/login", data=data)
        assert answer.status_code == 403
        assert not _sets_session(answer)
    # Another browser's form token does not help either (it is bound to that browser's cookie).
    other = browser(app)
    stolen = _field(other.get("/ui/login").text, "csrf_token")
    fresh = browser(app)
    answer = fresh.post("/ui/login", data={"token": ADMIN_TOKEN, "csrf_token": stolen})
    assert answer.status_code == 403


def test_a_key_without_the_read_scope_cannot_log_in(app: FastAPI, client: TestClient) -> None:
    token = make_key(ctx_of(app), scopes=("ingest",))
    b = browser(app)
    form = b.get("/ui/login")
    answer = b.post(
        "/ui/login", data={"token": token, "csrf_token": _field(form.text, "csrf_token")}
    )
    assert answer.status_code == 403
    assert "read scope" in answer.text
    assert not _sets_session(answer)


def test_repeated_wrong_tokens_are_throttled_like_the_api(app: FastAPI) -> None:
    b = browser(app)
    statuses = []
    for _ in range(25):
        form = b.get("/ui/login")
        answer = b.post(
            "/ui/login", data={"token": "nope", "csrf_token": _field(form.text, "csrf_token")}
        )
        statuses.append(answer.status_code)
    assert statuses[0] == 401
    assert statuses[-1] == 429


def test_login_returns_to_the_page_asked_for_and_never_elsewhere(
    admin: TestClient, app: FastAPI
) -> None:
    issue_id = ingest(admin)
    b = browser(app)
    first = b.get(f"/ui/issues/{issue_id}")
    target = first.headers["location"]
    form = b.get(target)
    answer = b.post(
        "/ui/login",
        data={
            "token": ADMIN_TOKEN,
            "csrf_token": _field(form.text, "csrf_token"),
            "next": _field(form.text, "next"),
        },
    )
    assert answer.headers["location"] == f"/ui/issues/{issue_id}"
    for evil in ("https://evil.example.com/", "//evil.example.com/ui/", "/ui/\\evil"):
        b2 = browser(app)
        form = b2.get("/ui/login")
        answer = b2.post(
            "/ui/login",
            data={
                "token": ADMIN_TOKEN,
                "csrf_token": _field(form.text, "csrf_token"),
                "next": evil,
            },
        )
        assert answer.headers["location"] == "/ui/issues"


def test_a_forged_cookie_is_no_session(app: FastAPI) -> None:
    b = login(app)
    value = b.cookies[SESSION_COOKIE]
    b.cookies.clear()
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    b.cookies.set(SESSION_COOKIE, forged, domain="testserver.local", path="/ui")
    assert b.get("/ui/issues").status_code == 303


def test_an_expired_session_is_no_session(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = load_secret(settings)
    cookie, _ = Signer(secret, max_age_seconds=60).session_cookie(None, "f")
    assert Signer(secret, max_age_seconds=60).read_session(cookie) is not None
    assert Signer(secret, max_age_seconds=-1).read_session(cookie) is None
    assert Signer("another secret " * 3, max_age_seconds=60).read_session(cookie) is None


def test_the_generated_secret_is_private_and_shared_by_the_processes(settings: Settings) -> None:
    first = load_secret(settings)
    path: Path = settings.console_secret_path
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_secret(settings) == first
    assert len(first) >= 32


def test_a_revoked_key_ends_its_sessions(app: FastAPI, admin: TestClient) -> None:
    created = admin.post(
        "/admin/organizations/1/keys", json={"name": "console", "scopes": ["read"]}
    ).json()
    b = login(app, created["token"])
    assert b.get("/ui/issues").status_code == 200
    assert admin.delete(f"/admin/keys/{created['id']}").status_code == 204
    assert b.get("/ui/issues").status_code == 303


def test_a_new_admin_token_ends_the_admin_sessions(app: FastAPI) -> None:
    b = login(app)
    assert b.get("/ui/issues").status_code == 200
    ctx_of(app).admin_token = "a-new-admin-token"
    assert b.get("/ui/issues").status_code == 303


def test_logout_ends_the_session(app: FastAPI) -> None:
    b = login(app)
    page = b.get("/ui/issues")
    answer = b.post("/ui/logout", data={"csrf_token": _field(page.text, "csrf_token")})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login"
    assert SESSION_COOKIE not in b.cookies
    assert b.get("/ui/issues").status_code == 303


def test_logout_needs_the_csrf_token(app: FastAPI) -> None:
    b = login(app)
    assert b.post("/ui/logout", data={}).status_code == 403
    assert b.get("/ui/issues").status_code == 200


# The stream


def test_the_stream_shows_one_row_per_issue(admin: TestClient, app: FastAPI, clock: Any) -> None:
    issue_id = ingest(admin, detection_time=(clock.now - timedelta(minutes=3)).isoformat())
    b = login(app)
    page = b.get("/ui/issues").text
    issue = admin.get(f"/issues/{issue_id}").json()
    assert f'href="/ui/issues/{issue_id}"' in page
    assert issue["short_id"] in page and "Slow thing" in page
    assert ">error<" in page  # type
    assert "unresolved" in page and "medium" in page
    assert "3 min ago" in page
    assert re.search(
        r'<time datetime="[^"]+" title="2026-11-02 11:57:00 UTC">3 min ago</time>', page
    )
    assert 'class="spark"' in page
    assert "1 in the last 24 hours" in page


def test_the_sparkline_draws_the_last_24_hourly_counts(app: FastAPI, clock: Any) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx)
    now_hour = epoch_hour(clock.now)
    # Counted: the current hour and 23 before it; not the 24th hour back.
    set_hourly_counts(ctx, group.id, {now_hour: 4, now_hour - 23: 2, now_hour - 24: 50})
    page = login(app).get("/ui/issues").text
    spark = re.search(r'<svg class="spark".*?</svg>', page, re.S)
    assert spark
    assert "6 in the last 24 hours, at most 4 in an hour" in spark.group(0)
    path = re.search(r'<path class="bars" d="([^"]+)"', spark.group(0))
    assert path
    assert path.group(1).count("M") == 2  # two hours with occurrences, one bar each


def _groups(app: FastAPI) -> list[Any]:
    from sqlalchemy import select

    from app.models import Group

    with ctx_of(app).db.read() as session:
        return list(session.scalars(select(Group)))


def _titles(page: str) -> set[str]:
    return set(re.findall(r'<span class="short">[^<]+</span> ([^<]+)</a>', page))


def test_the_stream_filters_by_type_status_priority_project_and_text(
    app: FastAPI, client: TestClient
) -> None:
    ctx = ctx_of(app)
    other = make_project(ctx, slug="web")
    make_group(ctx, title="alpha error", type_id=1)
    make_group(ctx, title="beta query", type_id=1001)
    make_group(ctx, title="gamma resolved", status=1, substatus=None)
    make_group(ctx, title="delta high", priority=75)
    make_group(ctx, title="epsilon web", project_id=other.id)
    b = login(app)
    assert _titles(b.get("/ui/issues").text) == {
        "alpha error",
        "beta query",
        "gamma resolved",
        "delta high",
        "epsilon web",
    }
    assert _titles(b.get("/ui/issues?type=performance_slow_db_query").text) == {"beta query"}
    assert _titles(b.get("/ui/issues?status=resolved").text) == {"gamma resolved"}
    assert _titles(b.get("/ui/issues?priority=high").text) == {"delta high"}
    assert _titles(b.get(f"/ui/issues?project={other.id}").text) == {"epsilon web"}
    assert _titles(b.get("/ui/issues?query=ALPHA").text) == {"alpha error"}
    # The chosen filters stay selected in the form.
    page = b.get("/ui/issues?status=resolved&sort=first_seen").text
    assert '<option value="resolved" selected>' in page
    assert '<option value="first_seen" selected>' in page


def test_the_stream_sorts_like_the_api(app: FastAPI, client: TestClient) -> None:
    ctx = ctx_of(app)
    make_group(ctx, title="few", times_seen=2)
    make_group(ctx, title="many", times_seen=900)
    make_group(ctx, title="some", times_seen=50)
    page = login(app).get("/ui/issues?sort=times_seen").text
    order = re.findall(r'<span class="short">[^<]+</span> ([^<]+)</a>', page)
    assert order == ["many", "some", "few"]


def test_the_stream_finds_an_issue_by_its_short_id(app: FastAPI, client: TestClient) -> None:
    ctx = ctx_of(app)
    web = make_project(ctx, slug="web-app")
    make_group(ctx, title="wanted", project_id=web.id, short_id=12)
    make_group(ctx, title="same number elsewhere", short_id=12)
    make_group(ctx, title="not wanted", project_id=web.id, short_id=13)
    b = login(app)
    wanted = next(g for g in _groups(app) if g.title == "wanted")
    # The search box opens the issue whose short id it names.
    for query in ("WEB-APP-12", "web-app-12", " web-app-12 "):
        answer = b.get("/ui/issues", params={"query": query})
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/ui/issues/{wanted.id}"
    # Text that also matches other issues lists them all.
    make_group(ctx, title="see WEB-APP-12 too")
    assert _titles(b.get("/ui/issues?query=WEB-APP-12").text) == {"wanted", "see WEB-APP-12 too"}


def test_the_stream_pages_with_the_keyset_cursor(
    app: FastAPI, client: TestClient, clock: Any
) -> None:
    ctx = ctx_of(app)
    for n in range(30):
        make_group(ctx, title=f"issue {n:02d}", last_seen=clock.now - timedelta(minutes=n))
    b = login(app)
    first = b.get("/ui/issues?status=unresolved").text
    link = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert link
    url = html.unescape(link.group(1))
    assert "status=unresolved" in url
    second = b.get(url).text
    one, two = _titles(first), _titles(second)
    assert len(one) == 25 and len(two) == 5
    assert not one & two
    assert one | two == {f"issue {n:02d}" for n in range(30)}
    assert 'rel="next"' not in second


def test_a_bad_filter_is_a_message_not_a_crash(app: FastAPI, client: TestClient) -> None:
    b = login(app)
    for query, message in (
        ("type=no_such_type", "no_such_type"),
        ("status=sleeping", "sleeping"),
        ("project=abc", "project"),
        ("sort=colour", "sort"),
        ("cursor=%%%", "cursor"),
    ):
        answer = b.get(f"/ui/issues?{query}")
        assert answer.status_code == 422, query
        assert 'class="flash error"' in answer.text and message in answer.text


def test_the_sparklines_cost_one_query_whatever_the_page_size(
    app: FastAPI, client: TestClient, clock: Any
) -> None:
    ctx = ctx_of(app)
    b = login(app)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    def page_queries() -> int:
        statements.clear()
        event.listen(ctx.db.engine, "before_cursor_execute", count)
        try:
            assert b.get("/ui/issues").status_code == 200
        finally:
            event.remove(ctx.db.engine, "before_cursor_execute", count)
        return len(statements)

    for _ in range(2):
        group = make_group(ctx)
        set_hourly_counts(ctx, group.id, {epoch_hour(clock.now): 3})
    small = page_queries()
    for _ in range(23):
        group = make_group(ctx)
        set_hourly_counts(ctx, group.id, {epoch_hour(clock.now): 3})
    assert page_queries() == small
    assert sum("hourly_counts" in s for s in statements) == 1


# Escaping and headers


HOSTILE = '<script>alert("x")</script>'


def test_everything_a_detector_sent_is_escaped(admin: TestClient, app: FastAPI) -> None:
    body = occurrence(
        issue_title=HOSTILE,
        subtitle="<b>bold</b>",
        culprit="<img src=x onerror=alert(1)>",
        evidence_display=[
            {"name": "<i>name</i>", "value": "</pre><script>evil()</script>", "important": True}
        ],
        evidence_data={"html": "</pre><script>evil()</script>"},
    )
    body["event"]["tags"] = {"<tag>": "<value onclick=x>"}
    issue_id = admin.post("/occurrences", json=body).json()["issue_id"]
    b = login(app)
    for url in ("/ui/issues", f"/ui/issues/{issue_id}"):
        page = b.get(url).text
        assert "<script" not in page, url
        assert "<img" not in page and "<b>bold" not in page and "<i>name" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    page = b.get(f"/ui/issues/{issue_id}").text
    assert "&lt;value onclick=x&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;evil()&lt;/script&gt;" in page


def test_pages_carry_a_strict_policy_and_no_inline_script_or_style(
    admin: TestClient, app: FastAPI
) -> None:
    issue_id = ingest(admin)
    b = login(app)
    urls = [p.format(id=issue_id) for p in PAGES]
    answers = [b.get(u) for u in urls] + [browser(app).get("/ui/login")]
    for answer in answers:
        assert answer.status_code == 200, answer.url
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "script-src" not in policy  # default-src 'none': no script at all
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        text = answer.text
        assert "<script" not in text and "<style" not in text and " style=" not in text
        assert " on" not in re.sub(r">[^<]*<", "><", text).replace(" one", "")  # no onclick=…
        # Nothing from another host: no remote script, style, font or image.
        assert not re.search(r'(src|href)="(https?:)?//', text)
    css = b.get("/ui/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "@import" not in css.text and "url(" not in css.text


def test_pages_are_labelled_for_assistive_technology(admin: TestClient, app: FastAPI) -> None:
    issue_id = ingest(admin)
    b = login(app)
    for url in ("/ui/issues", f"/ui/issues/{issue_id}"):
        page = b.get(url).text
        assert '<html lang="en">' in page and '<main id="main">' in page
        assert 'name="viewport"' in page
        ids = set(re.findall(r'<(?:input|select) id="([^"]+)"', page))
        labels = set(re.findall(r'<label for="([^"]+)"', page))
        assert ids and ids <= labels, url
        assert 'role="img" aria-label' in page or 'role="img" aria-labelledby' in page


# One issue


def test_the_issue_page_shows_evidence_event_chart_activity_and_occurrences(
    admin: TestClient, app: FastAPI
) -> None:
    body = occurrence(
        evidence_display=[
            {"name": "Other", "value": "second", "important": False},
            {"name": "Main", "value": "first", "important": True},
        ],
        evidence_data={"nested": {"b": 2, "a": [1, 2]}},
    )
    body["event"]["tags"] = {"env": "prod", "release": "1.2.3"}
    issue_id = admin.post("/occurrences", json=body).json()["issue_id"]
    admin.patch(f"/issues/{issue_id}", json={"priority": "high"})
    b = login(app)
    page = b.get(f"/ui/issues/{issue_id}").text
    assert "Slow thing" in page and "in handler" in page and "app.views.index" in page
    assert page.index("Main") < page.index("Other")  # the important evidence first
    assert '<div class="important">' in page
    assert "<details" in page and "<summary>Evidence data (JSON)</summary>" in page
    assert "&#34;nested&#34;: {\n    &#34;a&#34;: [" in page  # pretty-printed, sorted keys
    assert "<td>release</td><td>1.2.3</td>" in page and "python" in page
    assert 'aria-labelledby="chart-cap"' in page and 'class="bar"' in page
    assert "set priority" in page and "by admin" in page
    assert body["id"] in page
    assert 'class="ceiling"' not in page


def test_the_chart_overlays_the_forecast_when_archived_until_escalating(
    app: FastAPI, client: TestClient, clock: Any
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx, status=2, substatus=1)
    set_hourly_counts(ctx, group.id, {epoch_hour(clock.now) - 2: 5})
    with ctx.db.write() as session:
        session.add(
            Forecast(
                group_id=group.id,
                computed_at=clock.now,
                start_date=str(clock.now.date() - timedelta(days=3)),
                ceilings=[40 + d for d in range(14)],
            )
        )
        session.commit()
    b = login(app)
    page = b.get(f"/ui/issues/{group.id}").text
    ceilings = re.findall(r'<line class="ceiling"[^>]*><title>([^<]+)</title>', page)
    assert len(ceilings) in (7, 8)  # each UTC day the 168 hours touch
    assert any(f"{clock.now.date()}: escalates above 43 per hour" in c for c in ceilings)
    # The same forecast is not drawn once the issue is no longer archived until escalating.
    admin = browser(app)
    admin.headers.update(auth(ADMIN_TOKEN))
    admin.patch(f"/issues/{group.id}", json={"status": "unresolved", "substatus": "ongoing"})
    assert 'class="ceiling"' not in b.get(f"/ui/issues/{group.id}").text


def test_the_occurrences_are_paged(app: FastAPI, client: TestClient, clock: Any) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx)
    add_occurrences(ctx, group.id, [clock.now - timedelta(minutes=m) for m in range(13)])
    b = login(app)
    page = b.get(f"/ui/issues/{group.id}").text
    assert page.count("<tr>") - page.count("<thead><tr>") >= 10
    link = re.search(r'<a rel="next" href="([^"]+)">Older occurrences', page)
    assert link
    older = b.get(html.unescape(link.group(1))).text
    rows = re.findall(r"<td><code>([0-9a-f]{32})</code></td>", older)
    assert len(rows) == 3
    assert not set(rows) & set(re.findall(r"<td><code>([0-9a-f]{32})</code></td>", page))


def test_an_unknown_issue_is_a_404_page(app: FastAPI, client: TestClient) -> None:
    answer = login(app).get("/ui/issues/999999")
    assert answer.status_code == 404
    assert "issue_not_found" in answer.text


# Triage


def test_resolving_goes_through_the_patch_service(admin: TestClient, app: FastAPI) -> None:
    issue_id = ingest(admin)
    b = login(app)
    form = triage_form(b, issue_id)
    answer = b.post(f"/ui/issues/{issue_id}/triage", data={**form, "status": "resolved"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ui/issues/{issue_id}?saved=1"
    issue = admin.get(f"/issues/{issue_id}").json()
    assert issue["status"] == "resolved" and issue["substatus"] is None
    activity = admin.get(f"/issues/{issue_id}/activity").json()["data"]
    assert [(a["type"], a["actor"]) for a in activity] == [("set_resolved", "admin")]
    page = b.get(answer.headers["location"]).text
    assert "Saved." in page and "set resolved" in page


def test_the_full_form_sends_only_what_changed(admin: TestClient, app: FastAPI) -> None:
    issue_id = ingest(admin)
    b = login(app)
    form = triage_form(b, issue_id)
    # The form as drawn (unresolved/new, medium, nobody) plus a new priority and assignee.
    data = {
        **form,
        "status": "unresolved",
        "substatus": "new",
        "priority": "high",
        "assignee": "team:web",
    }
    assert b.post(f"/ui/issues/{issue_id}/triage", data=data).status_code == 303
    issue = admin.get(f"/issues/{issue_id}").json()
    assert (issue["status"], issue["substatus"]) == ("unresolved", "new")
    assert issue["priority"] == "high" and issue["priority_locked"]
    assert issue["assignee"] == "team:web"
    types = [a["type"] for a in admin.get(f"/issues/{issue_id}/activity").json()["data"]]
    assert sorted(types) == ["set_assignee", "set_priority"]


def test_a_status_with_a_substatus_of_another_status_gets_its_default(
    admin: TestClient, app: FastAPI
) -> None:
    issue_id = ingest(admin)
    b = login(app)
    form = triage_form(b, issue_id)
    data = {**form, "status": "ignored", "substatus": "new"}
    assert b.post(f"/ui/issues/{issue_id}/triage", data=data).status_code == 303
    issue = admin.get(f"/issues/{issue_id}").json()
    assert (issue["status"], issue["substatus"]) == ("ignored", "archived_until_escalating")


def test_a_stale_etag_changes_nothing_and_shows_the_issue_fresh(
    admin: TestClient, app: FastAPI
) -> None:
    issue_id = ingest(admin)
    b = login(app)
    form = triage_form(b, issue_id)
    admin.patch(f"/issues/{issue_id}", json={"priority": "low"})  # someone else, meanwhile
    version = group_row(ctx_of(app), issue_id).version
    answer = b.post(f"/ui/issues/{issue_id}/triage", data={**form, "status": "resolved"})
    assert answer.status_code == 409
    assert "changed meanwhile" in answer.text
    assert '<option value="low" selected>' in answer.text  # shown as it is now
    assert _field(answer.text, "etag") != form["etag"]
    assert group_row(ctx_of(app), issue_id).version == version
    assert admin.get(f"/issues/{issue_id}").json()["status"] == "unresolved"


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
def test_a_missing_or_wrong_csrf_token_is_refused_and_changes_nothing(
    admin: TestClient, app: FastAPI, csrf: str | None
) -> None:
    issue_id = ingest(admin)
    b = login(app)
    form = triage_form(b, issue_id)
    version = group_row(ctx_of(app), issue_id).version
    data = {"etag": form["etag"], "status": "resolved"}
    if csrf is not None:
        data["csrf_token"] = csrf
    answer = b.post(f"/ui/issues/{issue_id}/triage", data=data)
    assert answer.status_code == 403
    assert "csrf_failed" in answer.text
    assert group_row(ctx_of(app), issue_id).version == version


def test_another_sessions_csrf_token_does_not_work(admin: TestClient, app: FastAPI) -> None:
    issue_id = ingest(admin)
    mine, theirs = login(app), login(app)
    form = triage_form(theirs, issue_id)
    answer = mine.post(f"/ui/issues/{issue_id}/triage", data={**form, "status": "resolved"})
    assert answer.status_code == 403


def test_an_invalid_change_is_explained_and_changes_nothing(
    admin: TestClient, app: FastAPI
) -> None:
    issue_id = ingest(admin)
    b = login(app)
    form = triage_form(b, issue_id)
    version = group_row(ctx_of(app), issue_id).version
    for data in ({"assignee": "bob"}, {"priority": "urgent"}, {"status": "snoozed"}):
        answer = b.post(f"/ui/issues/{issue_id}/triage", data={**form, **data})
        assert answer.status_code == 422, data
        assert "Not changed:" in answer.text
    answer = b.post(f"/ui/issues/{issue_id}/triage", data={"csrf_token": form["csrf_token"]})
    assert answer.status_code == 422 and "etag" in answer.text
    assert group_row(ctx_of(app), issue_id).version == version


def test_a_read_only_key_sees_no_triage_controls_and_cannot_post(
    admin: TestClient, app: FastAPI
) -> None:
    issue_id = ingest(admin)
    b = login(app, make_key(ctx_of(app), scopes=("read",)))
    page = b.get(f"/ui/issues/{issue_id}")
    assert page.status_code == 200
    assert "/triage" not in page.text and "Resolve" not in page.text
    version = group_row(ctx_of(app), issue_id).version
    data = {
        "csrf_token": _field(page.text, "csrf_token"),
        "etag": f'"{issue_id}-{version}"',
        "status": "resolved",
    }
    answer = b.post(f"/ui/issues/{issue_id}/triage", data=data)
    assert answer.status_code == 403
    assert group_row(ctx_of(app), issue_id).version == version
    # A key with triage does get the controls.
    triager = login(app, make_key(ctx_of(app), scopes=("read", "triage")))
    assert f"/ui/issues/{issue_id}/triage" in triager.get(f"/ui/issues/{issue_id}").text


# Tenancy


def test_another_organization_never_sees_an_issue(admin: TestClient, app: FastAPI) -> None:
    ctx = ctx_of(app)
    make_org_with_project(ctx, 20, 20)
    make_project(ctx, id=2, organization_id=1)
    issue_id = ingest(admin, issue_title="secret of A")
    pending = occurrence(type=1006, fingerprint=["pending-of-a"])
    assert admin.post("/occurrences", json=pending).json()["outcome"] == "pending"
    for token in (make_key(ctx, organization_id=20), make_key(ctx, project_ids=[2])):
        b = login(app, token)
        answer = b.get(f"/ui/issues/{issue_id}")
        assert answer.status_code == 404
        assert "secret of A" not in answer.text
        for url in ("/ui/issues", "/ui/issues?query=secret", "/ui/issues?status=unresolved"):
            assert "secret of A" not in b.get(url).text
        assert "pending-of-a" not in b.get("/ui/pending").text
        form = b.get("/ui/issues").text
        data = {"csrf_token": _field(form, "csrf_token"), "etag": "*", "status": "resolved"}
        assert b.post(f"/ui/issues/{issue_id}/triage", data=data).status_code == 404
        # A project outside the key's reach is refused, as on the API.
        assert b.get("/ui/issues?project=1").status_code == 403
    assert admin.get(f"/issues/{issue_id}").json()["status"] == "unresolved"
    # A's own key does see them, so the checks above are not vacuous.
    own = login(app, make_key(ctx, scopes=("read",)))
    assert "secret of A" in own.get("/ui/issues").text
    assert "pending-of-a" in own.get("/ui/pending").text


def test_the_types_page_lists_types_flags_and_noise(admin: TestClient, app: FastAPI) -> None:
    created = admin.post(
        "/admin/issue-types",
        json={"type_id": 8999, "slug": "secret_type", "description": "d", "category": "error"},
    )
    assert created.status_code == 201, created.text
    admin.post(
        "/admin/rollout-flags/secret_type/visible", json={"stage": "la", "organizations": [7]}
    )
    page = login(app).get("/ui/types").text
    assert "performance_n_plus_one_db_queries" in page
    assert re.search(
        r"performance_n_plus_one_db_queries.*?</td>\s*<td>performance</td>", page, re.S
    )
    assert "secret_type" in page and "visible: <strong>" in page
    keyed = login(app, make_key(ctx_of(app), scopes=("read",))).get("/ui/types").text
    assert "performance_n_plus_one_db_queries" in keyed
    assert "secret_type" not in keyed  # unreleased and not visible to organization 1


def _project_rows(page: str) -> dict[str, str]:
    """Each listed project's slug and the text of its row."""
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("<tbody>", 1)[-1], re.S)
    return {m.group(1): row for row in rows if (m := re.search(r'">([^<]*)</a>', row))}


def test_the_projects_page_shows_retention_to_those_who_may_read_them(
    admin: TestClient, app: FastAPI
) -> None:
    ctx = ctx_of(app)
    make_org_with_project(ctx, 20, 20)
    assert admin.patch("/admin/projects/1", json={"retention_days": 30}).status_code == 200
    make_project(ctx, id=2, organization_id=1, slug="two", name=HOSTILE, resolve_age_hours=48)
    page = login(app).get("/ui/projects").text
    rows = _project_rows(page)
    assert set(rows) >= {"two"} and len(rows) == 3
    own = next(row for slug, row in rows.items() if '/ui/issues?project=1"' in row)
    assert "30 days" in own and "off" in own
    assert "48 h" in rows["two"] and "90 days" in rows["two"]
    assert "<script" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert 'href="/ui/projects" aria-current="page"' in page
    # A key sees its organization's projects, and only those it is limited to.
    keyed = _project_rows(login(app, make_key(ctx, scopes=("read",))).get("/ui/projects").text)
    assert len(keyed) == 2 and "two" in keyed
    assert all("/ui/issues?project=20" not in row for row in keyed.values())
    limited = login(app, make_key(ctx, scopes=("read",), project_ids=[2])).get("/ui/projects")
    assert set(_project_rows(limited.text)) == {"two"}
    other = login(app, make_key(ctx, organization_id=20, scopes=("read",))).get("/ui/projects")
    assert len(_project_rows(other.text)) == 1
    assert "two" not in other.text and "30 days" not in other.text


def test_every_console_page_is_covered_here(app: FastAPI) -> None:
    paths = {(m, p) for m, p in _endpoints(app.routes) if p == "/" or p.startswith("/ui")}
    assert paths == {
        ("GET", "/"),
        ("GET", "/ui"),
        ("GET", "/ui/"),
        ("GET", "/ui/static/console.css"),
        ("GET", "/ui/login"),
        ("POST", "/ui/login"),
        ("POST", "/ui/logout"),
        ("GET", "/ui/issues"),
        ("GET", "/ui/issues/{issue_id}"),
        ("POST", "/ui/issues/{issue_id}/triage"),
        ("GET", "/ui/types"),
        ("GET", "/ui/pending"),
        ("GET", "/ui/projects"),
    }, "a new console page needs its tests here (sessions, escaping, tenancy)"
