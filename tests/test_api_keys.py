"""Admin API: API keys (created once, listed without tokens, revoked) and what they may do."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from app.auth.dependencies import IngestDep, ReadDep, TriageDep
from app.auth.key_cache import KeyCache
from app.auth.keys import principal_without_io, resolve_principal
from app.auth.principal import Principal, hash_token
from app.context import AppContext
from app.dependencies import get_context
from app.models import ApiKey
from app.organizations.access import project_for
from app.organizations.service import revoke_api_key
from tests.builders import make_key
from tests.conftest import assert_error, auth

CtxDep = Annotated[AppContext, Depends(get_context)]
probe_router = APIRouter(prefix="/probe")


def _use(ctx: AppContext, principal: Principal, project_id: int | None) -> dict[str, Any]:
    if project_id is not None:
        with ctx.db.read() as session:
            project_for(session, principal, project_id)
    return {"ok": True}


@probe_router.get("/ingest")
def probe_ingest(ctx: CtxDep, p: IngestDep, project_id: int | None = None) -> dict[str, Any]:
    return _use(ctx, p, project_id)


@probe_router.get("/read")
def probe_read(ctx: CtxDep, p: ReadDep, project_id: int | None = None) -> dict[str, Any]:
    return _use(ctx, p, project_id)


@probe_router.get("/triage")
def probe_triage(ctx: CtxDep, p: TriageDep, project_id: int | None = None) -> dict[str, Any]:
    return _use(ctx, p, project_id)


@pytest.fixture
def probe(app: FastAPI) -> None:
    """Routes guarded by each scope, standing in for the ingest, read and triage endpoints."""
    app.include_router(probe_router)


def setup_org(admin: TestClient) -> None:
    """Organization 2 with projects 2 and 3; organization 1 keeps project 1."""
    assert (
        admin.post("/admin/organizations", json={"slug": "two", "name": "Two"}).status_code == 201
    )
    for pid in (2, 3):
        body = {"id": pid, "organization_id": 2, "slug": f"p{pid}", "name": f"P{pid}"}
        assert admin.post("/admin/projects", json=body).status_code == 201


def create_key(admin: TestClient, org_id: int = 2, **overrides: Any) -> dict[str, Any]:
    body = {"name": "detector", "scopes": ["ingest"]} | overrides
    response = admin.post(f"/admin/organizations/{org_id}/keys", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_created_key_shows_its_token_once(admin: TestClient) -> None:
    setup_org(admin)
    key = create_key(admin, scopes=["read", "ingest", "read"], project_ids=[3, 2])
    assert key["token"].startswith("ipk_")
    assert key["scopes"] == ["ingest", "read"]
    assert key["project_ids"] == [2, 3]
    assert key["organization_id"] == 2
    assert key["name"] == "detector"
    assert key["created_at"].startswith("2026-11-02T12:00:00")
    listed = admin.get("/admin/organizations/2/keys").json()
    assert listed == [{k: v for k, v in key.items() if k != "token"} | {"revoked_at": None}]
    assert key["token"] not in admin.get("/admin/organizations/2/keys").text


def test_only_the_token_hash_is_stored(admin: TestClient, app: FastAPI) -> None:
    setup_org(admin)
    key = create_key(admin)
    ctx: AppContext = app.state.ctx
    with ctx.db.read() as session:
        row = session.get(ApiKey, key["id"])
        assert row is not None
        assert row.token_hash == hash_token(key["token"])
        assert key["token"] not in {str(v) for v in vars(row).values()}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "k", "scopes": []},
        {"name": "k", "scopes": ["admin"]},
        {"name": "k"},
        {"name": "", "scopes": ["read"]},
        {"name": "k", "scopes": ["read"], "project_ids": []},
    ],
)
def test_malformed_key_is_invalid_payload(admin: TestClient, body: dict[str, Any]) -> None:
    setup_org(admin)
    assert_error(admin.post("/admin/organizations/2/keys", json=body), 422, "invalid_payload")


def test_key_limited_to_projects_of_another_organization_is_refused(admin: TestClient) -> None:
    setup_org(admin)
    response = admin.post(
        "/admin/organizations/2/keys", json={"name": "k", "scopes": ["read"], "project_ids": [1, 2]}
    )
    error = assert_error(response, 422, "invalid_payload")
    assert error["details"][0]["field"] == "project_ids"
    unknown = {"name": "k", "scopes": ["read"], "project_ids": [404]}
    assert_error(admin.post("/admin/organizations/2/keys", json=unknown), 422, "invalid_payload")


def test_keys_of_unknown_organization_are_not_found(admin: TestClient) -> None:
    body = {"name": "k", "scopes": ["read"]}
    assert_error(
        admin.post("/admin/organizations/9/keys", json=body), 404, "organization_not_found"
    )
    assert_error(admin.get("/admin/organizations/9/keys"), 404, "organization_not_found")


@pytest.mark.usefixtures("probe")
def test_revoked_key_answers_401(admin: TestClient) -> None:
    setup_org(admin)
    key = create_key(admin, scopes=["read"])
    assert admin.get("/probe/read", headers=auth(key["token"])).status_code == 200
    assert admin.delete(f"/admin/keys/{key['id']}").status_code == 204
    assert_error(admin.get("/probe/read", headers=auth(key["token"])), 401, "unauthenticated")
    listed = admin.get("/admin/organizations/2/keys").json()
    assert listed[0]["revoked_at"] is not None
    assert admin.delete(f"/admin/keys/{key['id']}").status_code == 204


def test_revoking_unknown_key_is_not_found(admin: TestClient) -> None:
    assert_error(admin.delete("/admin/keys/12345"), 404, "api_key_not_found")
    assert_error(admin.delete(f"/admin/keys/{2**31 - 1}"), 404, "api_key_not_found")
    assert_error(admin.delete(f"/admin/keys/{2**31}"), 422, "invalid_payload")


@pytest.mark.usefixtures("probe")
def test_key_scopes_are_enforced(admin: TestClient) -> None:
    setup_org(admin)
    token = create_key(admin, scopes=["ingest", "read"])["token"]
    assert admin.get("/probe/ingest", headers=auth(token)).status_code == 200
    assert admin.get("/probe/read", headers=auth(token)).status_code == 200
    assert_error(admin.get("/probe/triage", headers=auth(token)), 403, "forbidden")


@pytest.mark.usefixtures("probe")
def test_key_project_limits_and_organization_are_enforced(admin: TestClient) -> None:
    setup_org(admin)
    limited = create_key(admin, scopes=["read"], project_ids=[2])["token"]
    assert admin.get("/probe/read?project_id=2", headers=auth(limited)).status_code == 200
    assert_error(admin.get("/probe/read?project_id=3", headers=auth(limited)), 403, "forbidden")
    assert_error(admin.get("/probe/read?project_id=1", headers=auth(limited)), 403, "forbidden")
    everywhere = create_key(admin, scopes=["read"])["token"]
    assert admin.get("/probe/read?project_id=3", headers=auth(everywhere)).status_code == 200
    assert_error(admin.get("/probe/read?project_id=1", headers=auth(everywhere)), 403, "forbidden")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/organizations"),
        ("GET", "/admin/organizations/2"),
        ("POST", "/admin/organizations/2/keys"),
        ("GET", "/admin/organizations/2/keys"),
        ("DELETE", "/admin/keys/1"),
        ("GET", "/admin/projects"),
    ],
)
def test_api_key_of_an_organization_cannot_use_admin_routes(
    admin: TestClient, method: str, path: str
) -> None:
    setup_org(admin)
    token = create_key(admin, scopes=["ingest", "read", "triage"])["token"]
    assert_error(admin.request(method, path, headers=auth(token)), 403, "forbidden")


def test_key_routes_need_a_token(client: TestClient) -> None:
    assert_error(client.get("/admin/organizations/1/keys"), 401, "unauthenticated")
    assert_error(client.delete("/admin/keys/1"), 401, "unauthenticated")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/admin/organizations/2/keys", {"name": "k", "scopes": ["read"], "project_ids": [2**70]}),  # noqa: E501
        ("GET", f"/admin/organizations/{2**70}/keys", None),
        ("DELETE", f"/admin/keys/{2**70}", None),
    ],
)  # fmt: skip
def test_ids_beyond_64_bits_are_invalid_payload(
    admin: TestClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    setup_org(admin)
    assert_error(admin.request(method, path, json=body), 422, "invalid_payload")


def _cached(ctx: AppContext, token: str) -> tuple[bool, Principal | None]:
    return principal_without_io(ctx, token)


def test_a_flood_of_wrong_tokens_does_not_evict_cached_keys(client: TestClient) -> None:
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    ctx.key_cache = KeyCache(ttl_seconds=3600)
    token = make_key(ctx, scopes=("read",))
    assert resolve_principal(ctx, token) is not None
    flood = 10_050
    for n in range(flood):
        assert resolve_principal(ctx, f"ipk_bogus{n}") is None
    hit, principal = _cached(ctx, token)
    assert hit and principal is not None and principal.scopes == {"read"}
    # Wrong tokens are bounded too: the oldest are forgotten, the newest remembered.
    assert len(ctx.key_cache) <= 10_001
    assert _cached(ctx, "ipk_bogus0") == (False, None)
    assert _cached(ctx, f"ipk_bogus{flood - 1}") == (True, None)


def test_wrong_tokens_are_cached_through_the_look_up(client: TestClient) -> None:
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    ctx.key_cache = KeyCache(ttl_seconds=3600, max_keys=2, max_unknown=2)
    tokens = [make_key(ctx, scopes=("read",)) for _ in range(3)]
    for token in tokens:
        assert resolve_principal(ctx, token) is not None
    for n in range(3):
        assert resolve_principal(ctx, f"ipk_bogus{n}") is None
    assert len(ctx.key_cache) == 4
    assert _cached(ctx, tokens[0]) == (False, None)  # least recently used key: dropped
    assert _cached(ctx, tokens[2])[0]
    assert _cached(ctx, "ipk_bogus0") == (False, None)
    assert _cached(ctx, "ipk_bogus2") == (True, None)


def test_revocation_wins_over_a_look_up_that_read_the_key_before_it(
    admin: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-up reads the still valid key, the revocation commits and clears the cache, and
    only then does the look-up store its result: it must not bring the revoked key back."""
    ctx: AppContext = app.state.ctx
    ctx.key_cache = KeyCache(ttl_seconds=3600)
    setup_org(admin)
    key = create_key(admin, scopes=["read"])
    read_done, revoked = threading.Event(), threading.Event()
    real_read = ctx.db.read
    lookup_thread: list[threading.Thread] = []

    @contextmanager
    def read_then_wait() -> Iterator[Any]:
        with real_read() as session:
            yield session
        if threading.current_thread() in lookup_thread:
            read_done.set()
            assert revoked.wait(timeout=30)

    monkeypatch.setattr(ctx.db, "read", read_then_wait)
    found: list[Principal | None] = []
    lookup = threading.Thread(target=lambda: found.append(resolve_principal(ctx, key["token"])))
    lookup_thread.append(lookup)
    lookup.start()
    assert read_done.wait(timeout=30)
    revoke_api_key(ctx=ctx, key_id=key["id"])
    revoked.set()
    lookup.join(timeout=30)
    assert not lookup.is_alive()
    assert found and found[0] is not None  # the look-up itself read the key before revocation
    assert _cached(ctx, key["token"]) == (False, None)
    assert resolve_principal(ctx, key["token"]) is None
    assert_error(admin.get("/issues", headers=auth(key["token"])), 401, "unauthenticated")
