"""The issue types shipped with the service (SPEC §3), and the registry set-up that adds them.

They are written as ``GroupType`` subclasses, like plugin types, but do not register themselves
when defined: ``BUILTIN_TYPES`` lists them, and ``create_registry`` hands them to the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app.issue_types.registry import (
    GroupCategory,
    GroupType,
    NoiseConfig,
    PriorityLevel,
    Registry,
)

DAY = timedelta(hours=24)
LOW, MEDIUM, HIGH = PriorityLevel.LOW, PriorityLevel.MEDIUM, PriorityLevel.HIGH


@dataclass(frozen=True)
class _BuiltinType(GroupType):
    """Marks built-ins so answers can tell them from plugin types."""

    _source = "builtin"
    _registers_itself = False


def _noise(limit: int) -> NoiseConfig:
    return NoiseConfig(limit, DAY)


@dataclass(frozen=True)
class ErrorGroupType(_BuiltinType):
    type_id = 1
    slug = "error"
    description = "Error"
    category = GroupCategory.ERROR.value
    released = True


@dataclass(frozen=True)
class PerformanceSlowDBQueryGroupType(_BuiltinType):
    type_id = 1001
    slug = "performance_slow_db_query"
    description = "Slow DB Query"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW
    noise_config = _noise(100)


@dataclass(frozen=True)
class PerformanceRenderBlockingAssetSpanGroupType(_BuiltinType):
    type_id = 1004
    slug = "performance_render_blocking_asset_span"
    description = "Large Render Blocking Asset"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW
    noise_config = _noise(3)


@dataclass(frozen=True)
class PerformanceNPlusOneGroupType(_BuiltinType):
    type_id = 1006
    slug = "performance_n_plus_one_db_queries"
    description = "N+1 Query"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW
    noise_config = _noise(3)


@dataclass(frozen=True)
class PerformanceConsecutiveDBQueriesGroupType(_BuiltinType):
    type_id = 1007
    slug = "performance_consecutive_db_queries"
    description = "Consecutive DB Queries"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW
    noise_config = _noise(15)


@dataclass(frozen=True)
class PerformanceFileIOMainThreadGroupType(_BuiltinType):
    type_id = 1008
    slug = "performance_file_io_main_thread"
    description = "File IO on Main Thread"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW
    noise_config = _noise(3)


@dataclass(frozen=True)
class PerformanceConsecutiveHTTPQueriesGroupType(_BuiltinType):
    type_id = 1009
    slug = "performance_consecutive_http"
    description = "Consecutive HTTP"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW
    noise_config = _noise(5)


@dataclass(frozen=True)
class PerformanceNPlusOneAPICallsGroupType(_BuiltinType):
    type_id = 1010
    slug = "performance_n_plus_one_api_calls"
    description = "N+1 API Call"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW
    noise_config = _noise(3)


@dataclass(frozen=True)
class PerformanceUncompressedAssetsGroupType(_BuiltinType):
    type_id = 1012
    slug = "performance_uncompressed_assets"
    description = "Uncompressed Asset"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW
    noise_config = _noise(100)


@dataclass(frozen=True)
class PerformanceLargeHTTPPayloadGroupType(_BuiltinType):
    type_id = 1015
    slug = "performance_large_http_payload"
    description = "Large HTTP payload"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW


@dataclass(frozen=True)
class PerformanceHTTPOverheadGroupType(_BuiltinType):
    type_id = 1016
    slug = "performance_http_overhead"
    description = "HTTP/1.1 Overhead"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = LOW
    noise_config = _noise(20)


@dataclass(frozen=True)
class PerformanceP95EndpointRegressionGroupType(_BuiltinType):
    type_id = 1018
    slug = "performance_p95_endpoint_regression"
    description = "Endpoint Regression"
    category = GroupCategory.PERFORMANCE.value
    released = True
    default_priority = MEDIUM
    enable_auto_resolve = False
    enable_escalation_detection = False


@dataclass(frozen=True)
class ProfileFileIOGroupType(_BuiltinType):
    type_id = 2001
    slug = "profile_file_io_main_thread"
    description = "File I/O on Main Thread"
    category = GroupCategory.PROFILE.value
    default_priority = LOW


@dataclass(frozen=True)
class ProfileImageDecodeGroupType(_BuiltinType):
    type_id = 2002
    slug = "profile_image_decode_main_thread"
    description = "Image Decoding on Main Thread"
    category = GroupCategory.PROFILE.value
    default_priority = LOW


@dataclass(frozen=True)
class ProfileJSONDecodeType(_BuiltinType):
    type_id = 2003
    slug = "profile_json_decode_main_thread"
    description = "JSON Decoding on Main Thread"
    category = GroupCategory.PROFILE.value
    default_priority = LOW


@dataclass(frozen=True)
class ProfileRegexType(_BuiltinType):
    type_id = 2007
    slug = "profile_regex_main_thread"
    description = "Regex on Main Thread"
    category = GroupCategory.PROFILE.value
    released = True
    default_priority = LOW


@dataclass(frozen=True)
class ProfileFrameDropType(_BuiltinType):
    type_id = 2009
    slug = "profile_frame_drop"
    description = "Frame Drop"
    category = GroupCategory.PROFILE.value
    released = True
    default_priority = LOW
    noise_config = _noise(2000)


@dataclass(frozen=True)
class MonitorIncidentType(_BuiltinType):
    type_id = 4001
    slug = "monitor_check_in_failure"
    description = "Crons Monitor Failed"
    category = GroupCategory.CRON.value
    released = True
    default_priority = HIGH


@dataclass(frozen=True)
class ReplayRageClickType(_BuiltinType):
    type_id = 5002
    slug = "replay_click_rage"
    description = "Rage Click Detected"
    category = GroupCategory.REPLAY.value
    released = True
    default_priority = MEDIUM


@dataclass(frozen=True)
class ReplayHydrationErrorType(_BuiltinType):
    type_id = 5003
    slug = "replay_hydration_error"
    description = "Hydration Error Detected"
    category = GroupCategory.REPLAY.value
    released = True
    default_priority = MEDIUM


@dataclass(frozen=True)
class FeedbackGroup(_BuiltinType):
    type_id = 6001
    slug = "feedback"
    description = "Feedback"
    category = GroupCategory.FEEDBACK.value
    released = True
    default_priority = MEDIUM
    in_default_search = False
    enable_auto_resolve = False
    enable_escalation_detection = False


@dataclass(frozen=True)
class UptimeDomainCheckFailure(_BuiltinType):
    type_id = 7001
    slug = "uptime_domain_failure"
    description = "Uptime Domain Monitor Failure"
    category = GroupCategory.UPTIME.value
    default_priority = HIGH
    enable_auto_resolve = False
    enable_escalation_detection = False


@dataclass(frozen=True)
class MetricIssue(_BuiltinType):
    type_id = 8001
    slug = "metric_issue"
    description = "Metric issue"
    category = GroupCategory.METRIC_ALERT.value
    default_priority = HIGH


BUILTIN_TYPES: tuple[type[GroupType], ...] = (
    ErrorGroupType,
    PerformanceSlowDBQueryGroupType,
    PerformanceRenderBlockingAssetSpanGroupType,
    PerformanceNPlusOneGroupType,
    PerformanceConsecutiveDBQueriesGroupType,
    PerformanceFileIOMainThreadGroupType,
    PerformanceConsecutiveHTTPQueriesGroupType,
    PerformanceNPlusOneAPICallsGroupType,
    PerformanceUncompressedAssetsGroupType,
    PerformanceLargeHTTPPayloadGroupType,
    PerformanceHTTPOverheadGroupType,
    PerformanceP95EndpointRegressionGroupType,
    ProfileFileIOGroupType,
    ProfileImageDecodeGroupType,
    ProfileJSONDecodeType,
    ProfileRegexType,
    ProfileFrameDropType,
    MonitorIncidentType,
    ReplayRageClickType,
    ReplayHydrationErrorType,
    FeedbackGroup,
    UptimeDomainCheckFailure,
    MetricIssue,
)


def create_registry() -> Registry:
    """The registry of one application: the built-in types and the plugin types defined so far.

    Load the plugins first (``service.load_plugins``): a plugin type with the type_id or slug of
    a built-in raises ``DuplicateIssueType`` here.
    """
    return Registry(BUILTIN_TYPES)
