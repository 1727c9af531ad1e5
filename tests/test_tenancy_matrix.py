"""Every endpoint × every kind of caller (SPEC §2): who gets 2xx, 401, 403 or 404.

The endpoints are collected from ``app.routes``: a new endpoint without a row here fails
``test_every_endpoint_has_a_row``. Organization A is ``1`` (projects 1 and 2); B is ``20``
(project 20). The data of A lives in project 1.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.auth.principal import hash_token
from tests.builders import ctx_of, make_key, make_org_with_project, make_project, occurrence
from tests.conftest import ADMIN_TOKEN, auth

_n = itertools.count(1)


@dataclass
class World:
    """What one matrix test runs against: A's objects and a token per kind of caller."""

    issue_id: int
    occurrence_id: str
    webhook_id: int
    key_id: int
    tokens: dict[str, str]


Request = tuple[str, dict[str, Any]]  # url, extra arguments (json=…, params=…)


@dataclass(frozen=True)
class Row:
    """How one endpoint is reached and who may use it.

    ``scope``: None for public endpoints, ``admin`` for the admin API, else the key scope needed.
    ``reach``: ``project`` (a project named in the request: outsiders 403), ``object`` (read by
    id: outsiders 404, so existence is not revealed) or ``list`` (outsiders see an empty list).
    """

    scope: str | None
    ok: int
    build: Callable[[World], Request]
    reach: str = "project"
    batch: bool = False  # 200 with per-item results: the first item's status is what counts


def _occ(**kw: Any) -> dict[str, Any]:
    return occurrence(fingerprint=[f"matrix-{next(_n)}"], **kw)


def _status_change(**kw: Any) -> dict[str, Any]:
    return {"project_id": 1, "fingerprint": ["matrix-a"], "new_status": "resolved", **kw}


def _slug() -> str:
    return f"m-{next(_n)}"


ROWS: dict[tuple[str, str], Row] = {
    # public
    ("GET", "/healthz"): Row(None, 200, lambda w: ("/healthz", {})),
    ("GET", "/readyz"): Row(None, 200, lambda w: ("/readyz", {})),
    ("GET", "/metrics"): Row(None, 200, lambda w: ("/metrics", {})),
    ("GET", "/docs"): Row(None, 200, lambda w: ("/docs", {})),
    ("GET", "/redoc"): Row(None, 200, lambda w: ("/redoc", {})),
    # ingest
    ("POST", "/occurrences"): Row("ingest", 202, lambda w: ("/occurrences", {"json": _occ()})),
    ("POST", "/occurrences/batch"): Row(
        "ingest",
        202,
        lambda w: ("/occurrences/batch", {"json": {"occurrences": [_occ()]}}),
        batch=True,
    ),
    ("POST", "/ingest"): Row("ingest", 202, lambda w: ("/ingest", {"json": _occ()})),
    ("POST", "/status-changes"): Row(
        "ingest", 200, lambda w: ("/status-changes", {"json": _status_change()})
    ),
    # read
    ("GET", "/occurrences/{occurrence_id}"): Row(
        "read",
        200,
        lambda w: (f"/occurrences/{w.occurrence_id}", {"params": {"project_id": 1}}),
        reach="object",
    ),
    ("GET", "/pending"): Row("read", 200, lambda w: ("/pending", {}), reach="list"),
    ("GET", "/issues"): Row("read", 200, lambda w: ("/issues", {}), reach="list"),
    ("GET", "/issues/{issue_id}"): Row(
        "read", 200, lambda w: (f"/issues/{w.issue_id}", {}), reach="object"
    ),
    ("GET", "/issues/{issue_id}/occurrences"): Row(
        "read", 200, lambda w: (f"/issues/{w.issue_id}/occurrences", {}), reach="object"
    ),
    ("GET", "/issues/{issue_id}/activity"): Row(
        "read", 200, lambda w: (f"/issues/{w.issue_id}/activity", {}), reach="object"
    ),
    ("GET", "/issues/{issue_id}/forecast"): Row(
        "read", 200, lambda w: (f"/issues/{w.issue_id}/forecast", {}), reach="object"
    ),
    # triage
    ("PATCH", "/issues/{issue_id}"): Row(
        "triage",
        200,
        lambda w: (f"/issues/{w.issue_id}", {"json": {"priority": "high"}}),
        reach="object",
    ),
    # admin
    ("GET", "/admin/organizations"): Row("admin", 200, lambda w: ("/admin/organizations", {})),
    ("POST", "/admin/organizations"): Row(
        "admin", 201, lambda w: ("/admin/organizations", {"json": {"slug": _slug(), "name": "M"}})
    ),
    ("GET", "/admin/organizations/{organization_id}"): Row(
        "admin", 200, lambda w: ("/admin/organizations/1", {})
    ),
    ("PATCH", "/admin/organizations/{organization_id}"): Row(
        "admin", 200, lambda w: ("/admin/organizations/1", {"json": {"name": "A"}})
    ),
    ("GET", "/admin/projects"): Row("admin", 200, lambda w: ("/admin/projects", {})),
    ("POST", "/admin/projects"): Row(
        "admin",
        201,
        lambda w: (
            "/admin/projects",
            {"json": {"organization_id": 1, "slug": _slug(), "name": "M"}},
        ),
    ),
    ("GET", "/admin/projects/{project_id}"): Row("admin", 200, lambda w: ("/admin/projects/1", {})),
    ("PATCH", "/admin/projects/{project_id}"): Row(
        "admin", 200, lambda w: ("/admin/projects/1", {"json": {"name": "P"}})
    ),
    ("POST", "/admin/organizations/{organization_id}/keys"): Row(
        "admin",
        201,
        lambda w: ("/admin/organizations/1/keys", {"json": {"name": "k", "scopes": ["read"]}}),
    ),
    ("GET", "/admin/organizations/{organization_id}/keys"): Row(
        "admin", 200, lambda w: ("/admin/organizations/1/keys", {})
    ),
    ("DELETE", "/admin/keys/{key_id}"): Row(
        "admin", 204, lambda w: (f"/admin/keys/{w.key_id}", {})
    ),
    ("GET", "/admin/categories"): Row("admin", 200, lambda w: ("/admin/categories", {})),
    ("POST", "/admin/categories"): Row(
        "admin",
        201,
        lambda w: (
            "/admin/categories",
            {"json": {"id": 100 + next(_n), "slug": _slug(), "description": "d"}},
        ),
    ),
    ("GET", "/admin/issue-types"): Row("admin", 200, lambda w: ("/admin/issue-types", {})),
    ("POST", "/admin/issue-types"): Row(
        "admin",
        201,
        lambda w: (
            "/admin/issue-types",
            {
                "json": {
                    "type_id": 9000 + next(_n),
                    "slug": _slug().replace("-", "_"),
                    "description": "d",
                    "category": "error",
                }
            },
        ),
    ),
    ("GET", "/admin/issue-types/{slug}"): Row(
        "admin", 200, lambda w: ("/admin/issue-types/error", {})
    ),
    ("PATCH", "/admin/issue-types/{slug}"): Row(
        "admin",
        200,
        lambda w: ("/admin/issue-types/matrix_type", {"json": {"description": "changed"}}),
    ),
    ("GET", "/admin/flags"): Row("admin", 200, lambda w: ("/admin/flags", {})),
    ("PUT", "/admin/issue-types/{slug}/flags/{kind}"): Row(
        "admin",
        200,
        lambda w: (
            "/admin/issue-types/profile_file_io_main_thread/flags/visible",
            {"json": {"stage": "ga", "organizations": []}},
        ),
    ),
    ("GET", "/admin/organizations/{organization_id}/features"): Row(
        "admin", 200, lambda w: ("/admin/organizations/1/features", {})
    ),
    ("POST", "/admin/projects/{project_id}/webhooks"): Row(
        "admin",
        201,
        lambda w: (
            "/admin/projects/1/webhooks",
            {
                "json": {
                    "url": "https://hooks.example.com/in",
                    "secret": "s" * 16,
                    "events": ["issue.created"],
                }
            },
        ),
    ),
    ("GET", "/admin/projects/{project_id}/webhooks"): Row(
        "admin", 200, lambda w: ("/admin/projects/1/webhooks", {})
    ),
    ("DELETE", "/admin/webhooks/{webhook_id}"): Row(
        "admin", 204, lambda w: (f"/admin/webhooks/{w.webhook_id}", {})
    ),
    ("GET", "/admin/webhooks/{webhook_id}/deliveries"): Row(
        "admin", 200, lambda w: (f"/admin/webhooks/{w.webhook_id}/deliveries", {})
    ),
}


def _endpoints(routes: list[Any], prefix: str = "") -> set[tuple[str, str]]:
    found = set()
    for route in routes:
        if isinstance(route, APIRoute):
            for method in route.methods - {"HEAD", "OPTIONS"}:
                found.add((method, prefix + route.path))
        # FastAPI ≥ 0.16x keeps included routers as wrappers around the original router.
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            found |= _endpoints(included.routes, prefix + getattr(context, "prefix", ""))
    return found


def _console(endpoint: tuple[str, str]) -> bool:
    """The web console's pages use a session cookie, not a bearer token: their own matrix is in
    tests/test_console.py (``test_every_console_page_is_in_the_matrix``)."""
    return endpoint[1] == "/" or endpoint[1].startswith("/ui")


def test_every_endpoint_has_a_row(app: FastAPI) -> None:
    endpoints = {e for e in _endpoints(app.routes) if not _console(e)}
    assert len(endpoints) > 30
    assert endpoints - set(ROWS) == set(), "add a row to ROWS for each new endpoint"
    assert set(ROWS) - endpoints == set(), "a row names an endpoint that no longer exists"


def _world(admin: TestClient, app: FastAPI) -> World:
    ctx = ctx_of(app)
    make_project(ctx, id=2, organization_id=1)
    make_org_with_project(ctx, 20, 20)
    body = occurrence(fingerprint=["matrix-a"])
    answer = admin.post("/occurrences", json=body).json()
    assert answer["outcome"] == "created", answer
    created = admin.post(
        "/admin/projects/1/webhooks",
        json={
            "url": "https://hooks.example.com/a",
            "secret": "x" * 16,
            "events": ["issue.created"],
        },
    ).json()
    key = admin.post(
        "/admin/organizations/1/keys", json={"name": "to revoke", "scopes": ["read"]}
    ).json()
    admin.post(
        "/admin/issue-types",
        json={"type_id": 8999, "slug": "matrix_type", "description": "d", "category": "error"},
    )
    tokens = {
        "admin": ADMIN_TOKEN,
        "a:ingest": make_key(ctx, scopes=("ingest",)),
        "a:read": make_key(ctx, scopes=("read",)),
        "a:triage": make_key(ctx, scopes=("triage",)),
        "b:all": make_key(ctx, organization_id=20),
        "a:project2": make_key(ctx, project_ids=[2]),
    }
    return World(answer["issue_id"], answer["occurrence_id"], created["id"], key["id"], tokens)


def _expected(row: Row, caller: str) -> int:
    if row.scope is None:
        return row.ok
    if caller == "none":
        return 401
    if caller == "admin":
        return row.ok
    if row.scope == "admin":
        return 403
    if caller.startswith("a:") and caller != "a:project2":
        return row.ok if caller == f"a:{row.scope}" else 403
    # b:all (another organization) or a:project2 (limited to a project without A's data)
    return {"project": 403, "object": 404, "list": row.ok}[row.reach]


def _status(row: Row, response: Any) -> int:
    if row.batch and response.status_code == 200:
        item = response.json()["results"][0]
        return int(item.get("status", 202))
    return int(response.status_code)


# Admin last: its successful DELETEs would leave nothing for the callers after it.
CALLERS = ["none", "a:ingest", "a:read", "a:triage", "b:all", "a:project2", "admin"]


@pytest.mark.parametrize(("method", "path"), sorted(ROWS), ids=lambda v: str(v))
def test_matrix(admin: TestClient, app: FastAPI, method: str, path: str) -> None:
    world = _world(admin, app)
    row = ROWS[(method, path)]
    client = TestClient(app, raise_server_exceptions=False)
    seen = {}
    for caller in CALLERS:
        url, extra = row.build(world)
        headers = auth(world.tokens[caller]) if caller != "none" else {}
        response = client.request(method, url, headers=headers, **extra)
        seen[caller] = _status(row, response)
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}
    expected = {caller: _expected(row, caller) for caller in CALLERS}
    assert seen == expected


def test_lists_of_another_organization_show_nothing_of_a(admin: TestClient, app: FastAPI) -> None:
    world = _world(admin, app)
    pending = occurrence(type=1006, fingerprint=["matrix-pending"])
    assert admin.post("/occurrences", json=pending).json()["outcome"] == "pending"
    for caller in ("b:all", "a:project2"):
        headers = auth(world.tokens[caller])
        issues = admin.get("/issues", headers=headers, params={"category": "performance"}).json()
        assert admin.get("/issues", headers=headers).json()["data"] == []
        assert issues["data"] == []
        assert admin.get("/pending", headers=headers).json()["data"] == []
        for url in (
            "/admin/projects/1/webhooks",
            f"/admin/webhooks/{world.webhook_id}/deliveries",
            "/admin/organizations/1/keys",
        ):
            assert admin.get(url, headers=headers).status_code == 403
        for url in (f"/issues/{world.issue_id}", f"/issues/{world.issue_id}/occurrences"):
            assert admin.get(url, headers=headers).status_code == 404
    # A's own key sees them, so the empty answers above are not vacuous.
    headers = auth(world.tokens["a:read"])
    assert [i["id"] for i in admin.get("/issues", headers=headers).json()["data"]] == [
        world.issue_id
    ]
    assert len(admin.get("/pending", headers=headers).json()["data"]) == 1


def test_key_of_another_organization_cannot_send_into_a(admin: TestClient, app: FastAPI) -> None:
    world = _world(admin, app)
    headers = auth(world.tokens["b:all"])
    batch = admin.post(
        "/occurrences/batch", headers=headers, json={"occurrences": [_occ(), _occ()]}
    ).json()
    assert [r["status"] for r in batch["results"]] == [403, 403]
    status_change = admin.post("/status-changes", headers=headers, json=_status_change())
    assert status_change.status_code == 403
    # Nothing of B's attempts reached A.
    issue = admin.get(f"/issues/{world.issue_id}").json()
    assert (issue["status"], issue["times_seen"]) == ("unresolved", 1)


def test_key_lookup_by_sha256_is_constant_time_enough(admin: TestClient, app: FastAPI) -> None:
    """Keys are found by the SHA-256 of the presented token, never by comparing tokens.

    The database compares digests, not secrets: a timing difference can at most reveal a prefix
    of a *hash*, which tells nothing about a token's next character (finding a token with a
    chosen digest prefix is a preimage search). The admin token is compared with
    ``hmac.compare_digest``. So only the digest of a key is stored, and a near miss is refused
    exactly like a wild guess.
    """
    token = make_key(ctx_of(app), scopes=("read",))
    assert admin.get("/issues", headers=auth(token)).status_code == 200
    near_miss = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert admin.get("/issues", headers=auth(near_miss)).status_code == 401
    assert admin.get("/issues", headers=auth(ADMIN_TOKEN + "x")).status_code == 401
    from sqlalchemy import select

    from app.models import ApiKey

    with ctx_of(app).db.read() as session:
        stored = list(session.scalars(select(ApiKey.token_hash)))
    assert hash_token(token) in stored
    assert token not in stored


def test_secrets_never_appear_in_logs(
    admin: TestClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "whsec-" + uuid.uuid4().hex
    created = admin.post(
        "/admin/organizations/1/keys", json={"name": "logged?", "scopes": ["read", "ingest"]}
    ).json()
    token = created["token"]
    admin.post(
        "/admin/projects/1/webhooks",
        json={"url": "https://hooks.example.com/s", "secret": secret, "events": ["issue.created"]},
    )
    wrong = "ipk_" + uuid.uuid4().hex
    assert admin.get("/issues", headers=auth(wrong)).status_code == 401
    assert admin.get("/issues", headers=auth(token)).status_code == 200
    assert admin.get("/admin/flags", headers=auth(token)).status_code == 403
    admin.delete(f"/admin/keys/{created['id']}")
    assert admin.get("/issues", headers=auth(token)).status_code == 401
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for leaked in (token, secret, wrong, ADMIN_TOKEN):
        assert leaked not in text
