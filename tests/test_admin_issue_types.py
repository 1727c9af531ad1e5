"""Admin API: categories and issue types (built-in, code, plugin and API-registered)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.context import AppContext
from app.issue_types.registry import code_types
from app.issue_types.service import ENTRY_POINT_GROUP, load_plugins
from tests.conftest import assert_error


def new_type(**overrides: Any) -> dict[str, Any]:
    return {
        "type_id": 9001,
        "slug": "custom_slow_thing",
        "description": "Slow thing",
        "category": "performance",
    } | overrides


def create_type(admin: TestClient, **overrides: Any) -> dict[str, Any]:
    response = admin.post("/admin/issue-types", json=new_type(**overrides))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


# Categories


def test_builtin_categories_are_listed(admin: TestClient) -> None:
    cats = admin.get("/admin/categories").json()
    assert [(c["id"], c["slug"], c["builtin"]) for c in cats] == [
        (1, "error", True),
        (2, "performance", True),
        (3, "profile", True),
        (4, "cron", True),
        (5, "replay", True),
        (6, "feedback", True),
        (7, "uptime", True),
        (8, "metric_alert", True),
    ]


def test_registered_category_is_listed_and_usable(admin: TestClient) -> None:
    body = {"id": 20, "slug": "security", "description": "Security findings"}
    response = admin.post("/admin/categories", json=body)
    assert response.status_code == 201
    assert response.json() == body | {"builtin": False}
    assert admin.get("/admin/categories").json()[-1] == body | {"builtin": False}
    created = create_type(admin, category=20)
    assert (created["category"], created["category_id"]) == ("security", 20)


@pytest.mark.parametrize(
    "body",
    [
        {"id": 2, "slug": "fresh"},
        {"id": 30, "slug": "profile"},
        {"id": 20, "slug": "other"},
        {"id": 31, "slug": "security"},
    ],
)
def test_duplicate_category_conflicts(admin: TestClient, body: dict[str, Any]) -> None:
    admin.post("/admin/categories", json={"id": 20, "slug": "security"})
    assert_error(admin.post("/admin/categories", json=body), 409, "category_exists")


@pytest.mark.parametrize(
    "body", [{"id": 0, "slug": "x"}, {"id": 40, "slug": "Not Ok"}, {"slug": "x"}]
)
def test_malformed_category_is_invalid_payload(admin: TestClient, body: dict[str, Any]) -> None:
    assert_error(admin.post("/admin/categories", json=body), 422, "invalid_payload")


# Reading types


def test_builtin_type_answer_carries_every_attribute(admin: TestClient) -> None:
    got = admin.get("/admin/issue-types/performance_n_plus_one_db_queries").json()
    assert got == {
        "type_id": 1006,
        "slug": "performance_n_plus_one_db_queries",
        "description": got["description"],
        "category": "performance",
        "category_id": 2,
        "released": True,
        "noise_config": {"ignore_limit": 3, "expiry_seconds": 86400},
        "enable_auto_resolve": True,
        "enable_escalation_detection": True,
        "default_priority": "low",
        "creation_quota": None,
        "in_default_search": True,
        "source": "builtin",
        "read_only": True,
        "flags": [],
    }


def test_unreleased_type_lists_its_three_flag_names(admin: TestClient) -> None:
    got = admin.get("/admin/issue-types/profile_json_decode_main_thread").json()
    assert got["flags"] == [
        "organizations:profile-json-decode-main-thread-ingest",
        "organizations:profile-json-decode-main-thread-post-process-group",
        "organizations:profile-json-decode-main-thread-visible",
    ]


def test_unknown_type_is_not_found(admin: TestClient) -> None:
    assert_error(admin.get("/admin/issue-types/nope"), 404, "issue_type_not_found")
    assert_error(admin.patch("/admin/issue-types/nope", json={}), 404, "issue_type_not_found")


def test_types_are_listed_by_type_id(admin: TestClient) -> None:
    ids = [t["type_id"] for t in admin.get("/admin/issue-types").json()]
    assert ids == sorted(ids)
    assert {1, 1001, 2001, 4001, 6001, 7001, 8001} <= set(ids)


@pytest.mark.parametrize("ref", ["profile", "3"])
def test_types_filtered_by_category_id_or_slug(admin: TestClient, ref: str) -> None:
    types = admin.get("/admin/issue-types", params={"category": ref}).json()
    assert [t["type_id"] for t in types] == [2001, 2002, 2003, 2007, 2009]


def test_unknown_category_filter_is_refused(admin: TestClient) -> None:
    response = admin.get("/admin/issue-types", params={"category": "nope"})
    assert_error(response, 422, "unknown_category")


# Registering types


def test_registered_type_has_spec_defaults(admin: TestClient) -> None:
    created = create_type(admin)
    assert created == {
        "type_id": 9001,
        "slug": "custom_slow_thing",
        "description": "Slow thing",
        "category": "performance",
        "category_id": 2,
        "released": False,
        "noise_config": None,
        "enable_auto_resolve": True,
        "enable_escalation_detection": True,
        "default_priority": "medium",
        "creation_quota": None,
        "in_default_search": True,
        "source": "api",
        "read_only": False,
        "flags": [
            "organizations:custom-slow-thing-ingest",
            "organizations:custom-slow-thing-post-process-group",
            "organizations:custom-slow-thing-visible",
        ],
    }
    assert admin.get("/admin/issue-types/custom_slow_thing").json() == created
    listed = admin.get("/admin/issue-types", params={"category": "performance"}).json()
    assert created in listed


def test_registered_type_keeps_every_attribute(admin: TestClient) -> None:
    created = create_type(
        admin,
        category=3,
        released=True,
        noise_config={"ignore_limit": 4, "expiry_seconds": 600},
        enable_auto_resolve=False,
        enable_escalation_detection=False,
        default_priority=75,
        creation_quota={"limit": 10, "window_seconds": 3600},
        in_default_search=False,
    )
    assert created | {"description": "-"} == {
        "type_id": 9001,
        "slug": "custom_slow_thing",
        "description": "-",
        "category": "profile",
        "category_id": 3,
        "released": True,
        "noise_config": {"ignore_limit": 4, "expiry_seconds": 600},
        "enable_auto_resolve": False,
        "enable_escalation_detection": False,
        "default_priority": "high",
        "creation_quota": {"limit": 10, "window_seconds": 3600},
        "in_default_search": False,
        "source": "api",
        "read_only": False,
        "flags": [],
    }


def test_registered_type_is_in_the_process_registry_at_once(
    admin: TestClient, app: FastAPI
) -> None:
    create_type(admin, default_priority="low")
    ctx: AppContext = app.state.ctx
    issue_type = ctx.registry.get(9001)
    assert issue_type is not None
    assert (issue_type.slug, issue_type.default_priority, issue_type.source) == (
        "custom_slow_thing",
        25,
        "api",
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"type_id": 1006},
        {"slug": "error"},
        {"type_id": 9001, "slug": "another"},
        {"type_id": 9002, "slug": "custom_slow_thing"},
    ],
)
def test_duplicate_type_id_or_slug_conflicts(admin: TestClient, overrides: dict[str, Any]) -> None:
    create_type(admin)
    body = new_type(type_id=9500, slug="fresh") | overrides
    assert_error(admin.post("/admin/issue-types", json=body), 409, "issue_type_exists")


@pytest.mark.parametrize("category", ["nope", 99, "99"])
def test_unknown_category_is_refused(admin: TestClient, category: Any) -> None:
    response = admin.post("/admin/issue-types", json=new_type(category=category))
    assert_error(response, 422, "unknown_category")


@pytest.mark.parametrize(
    "overrides",
    [
        {"slug": "Bad Slug"},
        {"type_id": 0},
        {"noise_config": {"ignore_limit": 0, "expiry_seconds": 60}},
        {"noise_config": {"ignore_limit": 2, "expiry_seconds": 0}},
        {"default_priority": "urgent"},
        {"default_priority": 60},
        {"creation_quota": {"limit": 0, "window_seconds": 60}},
        {"creation_quota": {"limit": 1, "window_seconds": 0}},
        {"released": "perhaps"},
        {"unknown_field": 1},
    ],
)
def test_malformed_type_is_invalid_payload(admin: TestClient, overrides: dict[str, Any]) -> None:
    response = admin.post("/admin/issue-types", json=new_type(**overrides))
    assert_error(response, 422, "invalid_payload")


# Changing types


def test_patch_changes_api_type_and_registry(admin: TestClient, app: FastAPI) -> None:
    create_type(admin, noise_config={"ignore_limit": 4, "expiry_seconds": 600})
    body = {
        "description": "Renamed",
        "released": True,
        "default_priority": "high",
        "noise_config": None,
        "creation_quota": {"limit": 2, "window_seconds": 60},
        "in_default_search": False,
    }
    response = admin.patch("/admin/issue-types/custom_slow_thing", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["description"] == "Renamed"
    assert got["released"] is True
    assert got["flags"] == []
    assert got["default_priority"] == "high"
    assert got["noise_config"] is None
    assert got["creation_quota"] == {"limit": 2, "window_seconds": 60}
    assert got["in_default_search"] is False
    assert admin.get("/admin/issue-types/custom_slow_thing").json() == got
    ctx: AppContext = app.state.ctx
    issue_type = ctx.registry.get(9001)
    assert issue_type is not None
    assert issue_type.noise_config is None
    assert issue_type.default_priority == 75


def test_patch_with_same_identity_fields_is_accepted(admin: TestClient) -> None:
    create_type(admin)
    body = {"type_id": 9001, "slug": "custom_slow_thing", "category": 2, "description": "D"}
    response = admin.patch("/admin/issue-types/custom_slow_thing", json=body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body", [{"type_id": 9002}, {"slug": "renamed"}, {"category": "profile"}, {"category": 3}]
)
def test_patch_identity_fields_are_immutable(admin: TestClient, body: dict[str, Any]) -> None:
    create_type(admin)
    response = admin.patch("/admin/issue-types/custom_slow_thing", json=body)
    error = assert_error(response, 422, "immutable_field")
    assert error["details"][0]["field"] == next(iter(body))


def test_code_types_are_read_only(admin: TestClient) -> None:
    response = admin.patch("/admin/issue-types/error", json={"description": "Mine"})
    assert_error(response, 409, "issue_type_read_only")


def test_patch_with_null_for_required_attribute_is_invalid(admin: TestClient) -> None:
    create_type(admin)
    response = admin.patch("/admin/issue-types/custom_slow_thing", json={"released": None})
    assert_error(response, 422, "invalid_payload")


def test_type_registered_by_another_process_is_seen(
    admin: TestClient, app: FastAPI, settings: Any, clock: Any
) -> None:
    from app.main import create_app

    other = create_app(settings, clock=clock)
    with TestClient(other, raise_server_exceptions=False) as second:
        second.headers.update(admin.headers)
        create_type(admin)
        assert second.get("/admin/issue-types/custom_slow_thing").status_code == 200


# Plugins


PLUGIN_MODULE = """
from dataclasses import dataclass
from datetime import timedelta

from app.issue_types.registry import GroupCategory, GroupType, NoiseConfig


@dataclass(frozen=True)
class DemoPluginType(GroupType):
    type_id = 31337
    slug = "demo_plugin_slow_regex"
    description = "Slow regex (plugin)"
    category = GroupCategory.PROFILE.value
    noise_config = NoiseConfig(5, timedelta(days=2))
    default_priority = 75
"""


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tiny installed plugin package: a module and its entry point metadata."""
    (tmp_path / "demo_issue_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    dist = tmp_path / "demo_issue_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-issue-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ndemo = demo_issue_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    code_types.unregister(31337)
    sys.modules.pop("demo_issue_plugin", None)


def test_plugin_type_from_entry_point_is_listed(admin: TestClient, plugin_path: Path) -> None:
    # The app is already running: the plugin is installed after it started, then loaded.
    assert "demo" in load_plugins()
    listed = {t["slug"]: t for t in admin.get("/admin/issue-types").json()}
    plugin = listed["demo_plugin_slow_regex"]
    assert plugin["type_id"] == 31337
    assert plugin["category"] == "profile"
    assert plugin["noise_config"] == {"ignore_limit": 5, "expiry_seconds": 172800}
    assert plugin["default_priority"] == "high"
    assert (plugin["source"], plugin["read_only"]) == ("code", True)
    response = admin.patch("/admin/issue-types/demo_plugin_slow_regex", json={"released": True})
    assert_error(response, 409, "issue_type_read_only")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/categories"),
        ("POST", "/admin/categories"),
        ("GET", "/admin/issue-types"),
        ("POST", "/admin/issue-types"),
        ("GET", "/admin/issue-types/error"),
        ("PATCH", "/admin/issue-types/error"),
    ],
)
def test_type_routes_need_the_admin_token(client: TestClient, method: str, path: str) -> None:
    assert_error(client.request(method, path), 401, "unauthenticated")
