"""The issue-type registry and rollout rules, without a database (SPEC §3, §4)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from app.issue_types.builtins import BUILTIN_TYPES, create_registry
from app.issue_types.flags import FlagKind, flag_name
from app.issue_types.registry import (
    BUILTIN_CATEGORIES,
    CreationQuota,
    DuplicateIssueType,
    GroupCategory,
    GroupType,
    IssueType,
    NoiseConfig,
    Registry,
    code_types,
    parse_priority,
)
from app.rollout.rules import Stage, flag_on

# type_id, slug, category, priority, released, noise ignore_limit,
# auto-resolve, escalation, in_default_search — SPEC §3, row by row.
BUILTINS = [
    (1, "error", "error", "medium", True, None, True, True, True),
    (1001, "performance_slow_db_query", "performance", "low", True, 100, True, True, True),
    (1004, "performance_render_blocking_asset_span", "performance", "low", True, 3, True, True, True),  # noqa: E501
    (1006, "performance_n_plus_one_db_queries", "performance", "low", True, 3, True, True, True),
    (1007, "performance_consecutive_db_queries", "performance", "low", True, 15, True, True, True),
    (1008, "performance_file_io_main_thread", "performance", "low", True, 3, True, True, True),
    (1009, "performance_consecutive_http", "performance", "low", True, 5, True, True, True),
    (1010, "performance_n_plus_one_api_calls", "performance", "low", True, 3, True, True, True),
    (1012, "performance_uncompressed_assets", "performance", "low", True, 100, True, True, True),
    (1015, "performance_large_http_payload", "performance", "low", True, None, True, True, True),
    (1016, "performance_http_overhead", "performance", "low", True, 20, True, True, True),
    (1018, "performance_p95_endpoint_regression", "performance", "medium", True, None, False, False, True),  # noqa: E501
    (2001, "profile_file_io_main_thread", "profile", "low", False, None, True, True, True),
    (2002, "profile_image_decode_main_thread", "profile", "low", False, None, True, True, True),
    (2003, "profile_json_decode_main_thread", "profile", "low", False, None, True, True, True),
    (2007, "profile_regex_main_thread", "profile", "low", True, None, True, True, True),
    (2009, "profile_frame_drop", "profile", "low", True, 2000, True, True, True),
    (4001, "monitor_check_in_failure", "cron", "high", True, None, True, True, True),
    (5002, "replay_click_rage", "replay", "medium", True, None, True, True, True),
    (5003, "replay_hydration_error", "replay", "medium", True, None, True, True, True),
    (6001, "feedback", "feedback", "medium", True, None, False, False, False),
    (7001, "uptime_domain_failure", "uptime", "high", False, None, False, False, True),
    (8001, "metric_issue", "metric_alert", "high", False, None, True, True, True),
]  # fmt: skip
PRIORITY = {"low": 25, "medium": 50, "high": 75}


@pytest.fixture
def registry() -> Registry:
    return create_registry()


@pytest.fixture
def cleanup() -> Iterator[list[int]]:
    """Type ids to unregister after the test (code types are process-wide)."""
    ids: list[int] = []
    yield ids
    for type_id in ids:
        code_types.unregister(type_id)


def test_builtin_categories_match_the_spec() -> None:
    assert [(c.id, c.slug) for c in BUILTIN_CATEGORIES] == [
        (1, "error"),
        (2, "performance"),
        (3, "profile"),
        (4, "cron"),
        (5, "replay"),
        (6, "feedback"),
        (7, "uptime"),
        (8, "metric_alert"),
    ]


def test_builtin_types_are_exactly_the_spec_table(registry: Registry) -> None:
    shipped = [t for t in registry.types() if t.source == "builtin"]
    assert [t.type_id for t in shipped] == [row[0] for row in BUILTINS]


@pytest.mark.parametrize("row", BUILTINS, ids=[row[1] for row in BUILTINS])
def test_builtin_type_attributes_match_the_spec(
    registry: Registry, row: tuple[object, ...]
) -> None:
    type_id, slug, category, prio, released, noise, auto_resolve, escalation, default_search = row
    issue_type = registry.get(int(str(type_id)))
    assert issue_type is not None
    assert registry.by_slug(str(slug)) is issue_type
    cat = registry.category(issue_type.category_id)
    assert cat is not None
    assert cat.slug == category
    assert issue_type.default_priority == PRIORITY[str(prio)]
    assert issue_type.released is released
    if noise is None:
        assert issue_type.noise_config is None
    else:
        assert issue_type.noise_config == NoiseConfig(int(str(noise)), timedelta(hours=24))
    assert issue_type.enable_auto_resolve is auto_resolve
    assert issue_type.enable_escalation_detection is escalation
    assert issue_type.in_default_search is default_search
    assert issue_type.creation_quota is None
    assert issue_type.read_only


def test_defining_a_group_type_subclass_registers_it(cleanup: list[int]) -> None:
    cleanup.append(424242)

    @dataclass(frozen=True)
    class SlowRegex(GroupType):
        type_id = 424242
        slug = "test_slow_regex"
        description = "Slow regex"
        category = GroupCategory.PROFILE.value
        noise_config = NoiseConfig(5, timedelta(days=2))

    issue_type = create_registry().get(424242)
    assert issue_type is not None
    assert (issue_type.slug, issue_type.category_id, issue_type.source) == (
        "test_slow_regex",
        3,
        "code",
    )
    assert issue_type.noise_config is not None
    assert issue_type.noise_config.expiry_seconds == 172800
    assert (issue_type.released, issue_type.default_priority) == (False, 50)


def test_a_subclass_with_the_type_id_of_a_builtin_stops_the_registry_set_up(
    cleanup: list[int],
) -> None:
    cleanup.append(1006)

    @dataclass(frozen=True)
    class Clash(GroupType):
        type_id = 1006
        slug = "test_clash_by_id"
        description = "Clash"
        category = GroupCategory.PERFORMANCE.value

    with pytest.raises(
        DuplicateIssueType, match=r"type_id 1006 defined twice: .*NPlusOne.* and .*Clash"
    ):  # noqa: E501
        create_registry()


def test_a_subclass_with_the_slug_of_a_builtin_stops_the_registry_set_up(
    cleanup: list[int],
) -> None:
    cleanup.append(424243)

    @dataclass(frozen=True)
    class Clash(GroupType):
        type_id = 424243
        slug = "feedback"
        description = "Clash"
        category = GroupCategory.FEEDBACK.value

    with pytest.raises(
        DuplicateIssueType, match=r"slug 'feedback' defined twice: .*FeedbackGroup.* and .*Clash"
    ):  # noqa: E501
        create_registry()


def test_duplicate_type_id_between_subclasses_is_refused_at_definition(
    cleanup: list[int],
) -> None:
    cleanup.append(424245)

    @dataclass(frozen=True)
    class First(GroupType):
        type_id = 424245
        slug = "test_first"
        description = "First"
        category = GroupCategory.ERROR.value

    with pytest.raises(
        DuplicateIssueType, match=r"type_id 424245 defined twice: .*First and .*Second"
    ):  # noqa: E501

        @dataclass(frozen=True)
        class Second(GroupType):
            type_id = 424245
            slug = "test_second"
            description = "Second"
            category = GroupCategory.ERROR.value

    assert create_registry().get(424245) is not None


def test_the_builtins_register_nothing_by_themselves() -> None:
    # Defining them registers nothing: the registry set-up (create_registry) hands them over.
    ids = {cls.type_id for cls in BUILTIN_TYPES}
    assert len(ids) == len(BUILTIN_TYPES)
    assert not ids & set(code_types.by_id)
    assert Registry().get(1) is None
    assert create_registry().get(1) is not None


def test_subclass_without_required_attribute_is_refused() -> None:
    with pytest.raises(TypeError, match="slug"):

        @dataclass(frozen=True)
        class Incomplete(GroupType):
            type_id = 424244
            description = "No slug"
            category = GroupCategory.ERROR.value


@pytest.mark.parametrize(
    ("limit", "expiry"), [(0, timedelta(hours=1)), (1, timedelta(0)), (2, timedelta(seconds=-5))]
)
def test_noise_config_checks_itself(limit: int, expiry: timedelta) -> None:
    with pytest.raises(ValueError, match="noise"):
        NoiseConfig(limit, expiry)


def test_noise_config_defaults() -> None:
    assert NoiseConfig() == NoiseConfig(2, timedelta(hours=24))
    assert NoiseConfig(3, timedelta(minutes=5)).expiry_seconds == 300


@pytest.mark.parametrize(("limit", "window"), [(0, 60), (1, 0)])
def test_creation_quota_checks_itself(limit: int, window: int) -> None:
    with pytest.raises(ValueError, match="creation quota"):
        CreationQuota(limit, window)


@pytest.mark.parametrize(
    "overrides",
    [{"type_id": 0}, {"slug": "Bad"}, {"slug": "x" * 65}, {"default_priority": 60}],
)
def test_issue_type_checks_itself(overrides: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "type_id": 5,
        "slug": "ok",
        "description": "",
        "category_id": 1,
    } | overrides
    with pytest.raises(ValueError, match="type_id|slug|priority"):
        IssueType(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("low", 25), ("MEDIUM", 50), (" high ", 75), (25, 25), ("75", 75)],
)
def test_priority_accepts_names_and_numbers(value: object, expected: int) -> None:
    assert parse_priority(value) == expected


@pytest.mark.parametrize("value", [True, 60, "urgent", None, 50.0])
def test_priority_refuses_anything_else(value: object) -> None:
    with pytest.raises(ValueError, match="priority"):
        parse_priority(value)


def test_api_types_join_code_types_without_replacing_them(registry: Registry) -> None:
    api_type = IssueType(9001, "api_type", "API", 2, source="api")
    shadow = IssueType(1, "shadow_error", "Shadow", 1, source="api")
    registry.set_api_entries([api_type, shadow], [])
    assert registry.by_slug("api_type") is api_type
    assert not api_type.read_only
    error = registry.get(1)
    assert error is not None
    assert error.slug == "error"


def test_category_lookup_by_id_slug_or_numeric_string(registry: Registry) -> None:
    assert registry.category(3) == registry.category("profile") == registry.category("3")
    assert registry.category("nope") is None
    assert registry.category(99) is None


@pytest.mark.parametrize(
    ("slug", "kind", "name"),
    [
        ("profile_file_io_main_thread", FlagKind.INGEST, "organizations:profile-file-io-main-thread-ingest"),  # noqa: E501
        ("uptime_domain_failure", FlagKind.POST_PROCESS, "organizations:uptime-domain-failure-post-process-group"),  # noqa: E501
        ("metric_issue", FlagKind.VISIBLE, "organizations:metric-issue-visible"),
    ],
)  # fmt: skip
def test_flag_name_replaces_underscores(slug: str, kind: FlagKind, name: str) -> None:
    assert flag_name(slug, kind) == name


@pytest.mark.parametrize(
    ("stage", "listed", "early_adopter", "on"),
    [
        (Stage.OFF, True, True, False),
        (Stage.LA, True, False, True),
        (Stage.LA, False, True, False),
        (Stage.EA, True, False, True),
        (Stage.EA, False, True, True),
        (Stage.EA, False, False, False),
        (Stage.GA, False, False, True),
        ("ga", False, False, True),
    ],
)
def test_flag_on_follows_the_stage(
    stage: Stage | str, listed: bool, early_adopter: bool, on: bool
) -> None:
    orgs = {7} if listed else {8}
    assert flag_on(stage, orgs, 7, early_adopter) is on
