"""Admin API: organizations and projects."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import assert_error, auth


def create_org(admin: TestClient, **overrides: Any) -> dict[str, Any]:
    body = {"slug": "acme", "name": "Acme"} | overrides
    response = admin.post("/admin/organizations", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def create_project(admin: TestClient, **overrides: Any) -> dict[str, Any]:
    body = {"organization_id": 1, "slug": "web", "name": "Web"} | overrides
    response = admin.post("/admin/projects", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_empty_database_has_default_organization_and_project(admin: TestClient) -> None:
    orgs = admin.get("/admin/organizations").json()
    assert [(o["id"], o["slug"]) for o in orgs] == [(1, "default")]
    projects = admin.get("/admin/projects").json()
    assert [(p["id"], p["organization_id"], p["slug"]) for p in projects] == [(1, 1, "default")]


def test_organization_without_id_gets_next_free_id(admin: TestClient) -> None:
    first = create_org(admin)
    assert first["id"] == 2
    assert first["early_adopter"] is False
    assert first["created_at"].startswith("2026-11-02T12:00:00")
    assert create_org(admin, slug="other")["id"] == 3


def test_organization_with_explicit_id_is_kept_and_next_follows_it(admin: TestClient) -> None:
    assert create_org(admin, id=40, early_adopter=True)["id"] == 40
    assert create_org(admin, slug="next")["id"] == 41
    got = admin.get("/admin/organizations/40").json()
    assert got["slug"] == "acme"
    assert got["early_adopter"] is True


@pytest.mark.parametrize("body", [{"id": 1, "slug": "fresh"}, {"slug": "default"}])
def test_duplicate_organization_id_or_slug_conflicts(
    admin: TestClient, body: dict[str, Any]
) -> None:
    response = admin.post("/admin/organizations", json=body | {"name": "X"})
    assert_error(response, 409, "organization_exists")


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "Bad Slug", "name": "X"},
        {"slug": "x" * 65, "name": "X"},
        {"slug": "ok"},
        {"slug": "ok", "name": ""},
        {"slug": "ok", "name": "X", "id": 0},
        {"slug": "ok", "name": "X", "colour": "red"},
        {"slug": "ok", "name": "nul\u0000byte"},
    ],
)
def test_malformed_organization_is_invalid_payload(admin: TestClient, body: dict[str, Any]) -> None:
    assert_error(admin.post("/admin/organizations", json=body), 422, "invalid_payload")


def test_unknown_organization_is_not_found(admin: TestClient) -> None:
    assert_error(admin.get("/admin/organizations/99"), 404, "organization_not_found")
    patch = admin.patch("/admin/organizations/99", json={"name": "X"})
    assert_error(patch, 404, "organization_not_found")


def test_patch_organization_changes_only_given_fields(admin: TestClient) -> None:
    org = create_org(admin)
    response = admin.patch(f"/admin/organizations/{org['id']}", json={"early_adopter": True})
    assert response.status_code == 200
    assert response.json() == org | {"early_adopter": True}
    renamed = admin.patch(f"/admin/organizations/{org['id']}", json={"slug": "acme2", "name": "A"})
    assert renamed.json()["slug"] == "acme2"
    assert admin.get(f"/admin/organizations/{org['id']}").json()["name"] == "A"


def test_patch_organization_to_taken_slug_conflicts(admin: TestClient) -> None:
    org = create_org(admin)
    response = admin.patch(f"/admin/organizations/{org['id']}", json={"slug": "default"})
    assert_error(response, 409, "organization_exists")


def test_patch_organization_id_is_immutable(admin: TestClient) -> None:
    assert_error(admin.patch("/admin/organizations/1", json={"id": 5}), 422, "immutable_field")
    assert admin.patch("/admin/organizations/1", json={"id": 1}).status_code == 200


def test_patch_organization_with_null_is_invalid_payload(admin: TestClient) -> None:
    response = admin.patch("/admin/organizations/1", json={"name": None})
    error = assert_error(response, 422, "invalid_payload")
    assert error["details"][0]["field"] == "name"


def test_project_without_id_gets_next_free_id(admin: TestClient) -> None:
    project = create_project(admin)
    assert project == {
        "id": 2,
        "organization_id": 1,
        "slug": "web",
        "name": "Web",
        "resolve_age_hours": 0,
        "retention_days": 90,
        "created_at": project["created_at"],
    }


def test_project_keeps_detector_project_id(admin: TestClient) -> None:
    assert create_project(admin, id=4_500_000_000, resolve_age_hours=24)["id"] == 4_500_000_000
    got = admin.get("/admin/projects/4500000000").json()
    assert got["resolve_age_hours"] == 24
    assert create_project(admin, slug="next")["id"] == 4_500_000_001


def test_duplicate_project_id_or_slug_in_organization_conflicts(admin: TestClient) -> None:
    create_project(admin)
    assert_error(
        admin.post("/admin/projects", json={"organization_id": 1, "slug": "web", "name": "W"}),
        409,
        "project_exists",
    )
    assert_error(
        admin.post(
            "/admin/projects", json={"id": 1, "organization_id": 1, "slug": "x", "name": "X"}
        ),
        409,
        "project_exists",
    )


def test_same_project_slug_in_another_organization_is_allowed(admin: TestClient) -> None:
    org = create_org(admin)
    create_project(admin)
    assert create_project(admin, organization_id=org["id"])["organization_id"] == org["id"]


def test_project_of_unknown_organization_is_not_found(admin: TestClient) -> None:
    response = admin.post("/admin/projects", json={"organization_id": 9, "slug": "x", "name": "X"})
    assert_error(response, 404, "organization_not_found")


def test_projects_can_be_listed_per_organization(admin: TestClient) -> None:
    org = create_org(admin)
    create_project(admin, organization_id=org["id"])
    listed = admin.get("/admin/projects", params={"organization_id": org["id"]}).json()
    assert [p["slug"] for p in listed] == ["web"]


def test_patch_project_changes_name_slug_and_age(admin: TestClient) -> None:
    project = create_project(admin)
    body = {"name": "Website", "slug": "site", "resolve_age_hours": 48}
    response = admin.patch(f"/admin/projects/{project['id']}", json=body)
    assert response.status_code == 200
    assert response.json() == project | body


@pytest.mark.parametrize("body", [{"id": 7}, {"organization_id": 2}])
def test_patch_project_immutable_fields(admin: TestClient, body: dict[str, Any]) -> None:
    create_org(admin)
    response = admin.patch("/admin/projects/1", json=body)
    error = assert_error(response, 422, "immutable_field")
    assert error["details"][0]["field"] == next(iter(body))


def test_patch_project_to_taken_slug_conflicts(admin: TestClient) -> None:
    create_project(admin)
    assert_error(admin.patch("/admin/projects/2", json={"slug": "default"}), 409, "project_exists")


def test_unknown_project_is_not_found(admin: TestClient) -> None:
    assert_error(admin.get("/admin/projects/77"), 404, "project_not_found")
    assert_error(admin.patch("/admin/projects/77", json={"name": "X"}), 404, "project_not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/organizations"),
        ("POST", "/admin/organizations"),
        ("GET", "/admin/organizations/1"),
        ("PATCH", "/admin/organizations/1"),
        ("GET", "/admin/projects"),
        ("POST", "/admin/projects"),
        ("GET", "/admin/projects/1"),
        ("PATCH", "/admin/projects/1"),
    ],
)
def test_admin_routes_need_the_admin_token(client: TestClient, method: str, path: str) -> None:
    assert_error(client.request(method, path), 401, "unauthenticated")
    assert_error(client.request(method, path, headers=auth("nope")), 401, "unauthenticated")


BIG = 2**70
MAX_ID = 2**63 - 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/admin/organizations/{BIG}", None),
        ("PATCH", f"/admin/organizations/{BIG}", {"name": "X"}),
        ("GET", f"/admin/projects/{BIG}", None),
        ("GET", f"/admin/projects?organization_id={BIG}", None),
        ("POST", "/admin/organizations", {"id": BIG, "slug": "x", "name": "X"}),
        ("POST", "/admin/projects", {"id": BIG, "organization_id": 1, "slug": "x", "name": "X"}),
        ("POST", "/admin/projects", {"organization_id": BIG, "slug": "x", "name": "X"}),
    ],
)
def test_ids_beyond_64_bits_are_invalid_payload(
    admin: TestClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert_error(admin.request(method, path, json=body), 422, "invalid_payload")


def test_after_the_largest_id_the_smallest_free_id_is_used(admin: TestClient) -> None:
    assert create_org(admin, id=MAX_ID)["id"] == MAX_ID
    assert create_org(admin, slug="second")["id"] == 2
    assert create_org(admin, slug="third")["id"] == 3
    assert create_project(admin, id=MAX_ID)["id"] == MAX_ID
    assert create_project(admin, slug="next")["id"] == 2
