"""Admin API: rollout flags of unreleased types and the features an organization sees."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.context import AppContext
from app.issue_types.flags import FlagKind
from app.rollout.service import is_enabled
from tests.conftest import assert_error

TYPE = "profile_json_decode_main_thread"
INGEST = "organizations:profile-json-decode-main-thread-ingest"
POST_PROCESS = "organizations:profile-json-decode-main-thread-post-process-group"
VISIBLE = "organizations:profile-json-decode-main-thread-visible"


def put_flag(admin: TestClient, kind: str, stage: str, orgs: list[int] | None = None) -> Any:
    body: dict[str, Any] = {"stage": stage}
    if orgs is not None:
        body["organizations"] = orgs
    return admin.put(f"/admin/issue-types/{TYPE}/flags/{kind}", json=body)


def add_orgs(admin: TestClient) -> None:
    """Organization 2 (early adopter) and 3 (not)."""
    for body in (
        {"slug": "early", "name": "E", "early_adopter": True},
        {"slug": "late", "name": "L"},
    ):
        assert admin.post("/admin/organizations", json=body).status_code == 201


def features(admin: TestClient, org_id: int) -> list[str]:
    response = admin.get(f"/admin/organizations/{org_id}/features")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_every_unreleased_type_has_three_flags_off_by_default(admin: TestClient) -> None:
    flags = admin.get("/admin/flags").json()
    assert {f["type"] for f in flags} == {
        "profile_file_io_main_thread",
        "profile_image_decode_main_thread",
        "profile_json_decode_main_thread",
        "uptime_domain_failure",
        "metric_issue",
    }
    assert len(flags) == 15
    base = {"type": TYPE, "type_id": 2003, "stage": "off", "organizations": []}
    assert [f for f in flags if f["type"] == TYPE] == [
        base | {"name": INGEST, "kind": "ingest"},
        base | {"name": POST_PROCESS, "kind": "post_process"},
        base | {"name": VISIBLE, "kind": "visible"},
    ]


def test_put_flag_sets_stage_and_organizations(admin: TestClient) -> None:
    add_orgs(admin)
    response = put_flag(admin, "ingest", "la", [3, 2, 3])
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": INGEST,
        "type": TYPE,
        "type_id": 2003,
        "kind": "ingest",
        "stage": "la",
        "organizations": [2, 3],
    }
    listed = {f["name"]: f for f in admin.get("/admin/flags").json()}
    assert listed[INGEST]["stage"] == "la"
    assert listed[INGEST]["organizations"] == [2, 3]
    assert put_flag(admin, "ingest", "ga", []).json()["stage"] == "ga"
    assert {f["name"]: f for f in admin.get("/admin/flags").json()}[INGEST]["stage"] == "ga"


def test_stages_decide_which_organizations_have_the_feature(admin: TestClient) -> None:
    add_orgs(admin)
    assert features(admin, 1) == features(admin, 2) == features(admin, 3) == []
    put_flag(admin, "visible", "la", [3])
    assert (features(admin, 1), features(admin, 2), features(admin, 3)) == ([], [], [VISIBLE])
    put_flag(admin, "visible", "ea", [3])
    assert (features(admin, 1), features(admin, 2), features(admin, 3)) == (
        [],
        [VISIBLE],
        [VISIBLE],
    )
    put_flag(admin, "visible", "ga")
    assert features(admin, 1) == [VISIBLE]
    put_flag(admin, "visible", "off", [1, 2, 3])
    assert (features(admin, 1), features(admin, 2), features(admin, 3)) == ([], [], [])


def test_early_adopter_change_is_reflected_in_features(admin: TestClient) -> None:
    add_orgs(admin)
    put_flag(admin, "post_process", "ea")
    assert features(admin, 3) == []
    admin.patch("/admin/organizations/3", json={"early_adopter": True})
    assert features(admin, 3) == [POST_PROCESS]


def test_features_lists_flag_names_sorted(admin: TestClient) -> None:
    for kind in ("visible", "ingest", "post_process"):
        put_flag(admin, kind, "ga")
    assert features(admin, 1) == sorted([INGEST, POST_PROCESS, VISIBLE])


def test_flag_change_reaches_flag_checks_at_once(admin: TestClient, app: FastAPI) -> None:
    ctx: AppContext = app.state.ctx
    issue_type = ctx.registry.by_slug(TYPE)
    assert issue_type is not None
    with ctx.db.read() as session:
        assert not is_enabled(ctx, session, issue_type, FlagKind.INGEST, 1, False)
    put_flag(admin, "ingest", "la", [1])
    with ctx.db.read() as session:
        assert is_enabled(ctx, session, issue_type, FlagKind.INGEST, 1, False)
        assert not is_enabled(ctx, session, issue_type, FlagKind.INGEST, 2, False)


def test_api_registered_unreleased_type_gets_flags(admin: TestClient) -> None:
    body = {"type_id": 9100, "slug": "new_detector", "description": "New", "category": "error"}
    assert admin.post("/admin/issue-types", json=body).status_code == 201
    names = {f["name"] for f in admin.get("/admin/flags").json() if f["type"] == "new_detector"}
    assert names == {
        "organizations:new-detector-ingest",
        "organizations:new-detector-post-process-group",
        "organizations:new-detector-visible",
    }
    response = admin.put("/admin/issue-types/new_detector/flags/visible", json={"stage": "ga"})
    assert response.status_code == 200
    assert features(admin, 1) == ["organizations:new-detector-visible"]


def test_released_type_has_no_flags(admin: TestClient) -> None:
    response = admin.put("/admin/issue-types/error/flags/ingest", json={"stage": "ga"})
    assert_error(response, 409, "issue_type_released")
    assert all(f["type"] != "error" for f in admin.get("/admin/flags").json())


def test_flag_of_unknown_type_is_not_found(admin: TestClient) -> None:
    response = admin.put("/admin/issue-types/nope/flags/ingest", json={"stage": "ga"})
    assert_error(response, 404, "issue_type_not_found")


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("everything", {"stage": "ga"}),
        ("ingest", {"stage": "beta"}),
        ("ingest", {}),
        ("ingest", {"stage": "la", "organizations": "1"}),
        ("post-process", {"stage": "ga"}),
    ],
)
def test_malformed_flag_is_invalid_payload(
    admin: TestClient, kind: str, body: dict[str, Any]
) -> None:
    response = admin.put(f"/admin/issue-types/{TYPE}/flags/{kind}", json=body)
    assert_error(response, 422, "invalid_payload")


def test_flag_listing_unknown_organization_is_refused(admin: TestClient) -> None:
    assert_error(put_flag(admin, "ingest", "la", [1, 404]), 422, "unknown_organization")


def test_features_of_unknown_organization_are_not_found(admin: TestClient) -> None:
    response = admin.get("/admin/organizations/99/features")
    assert_error(response, 404, "organization_not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/flags"),
        ("PUT", f"/admin/issue-types/{TYPE}/flags/ingest"),
        ("GET", "/admin/organizations/1/features"),
    ],
)
def test_flag_routes_need_the_admin_token(client: TestClient, method: str, path: str) -> None:
    assert_error(client.request(method, path), 401, "unauthenticated")


def test_ids_beyond_64_bits_are_invalid_payload(admin: TestClient) -> None:
    assert_error(put_flag(admin, "ingest", "la", [2**70]), 422, "invalid_payload")
    response = admin.get(f"/admin/organizations/{2**70}/features")
    assert_error(response, 422, "invalid_payload")
