"""The issue-type registry: pure rules, no web framework and no database.

Types come from three places: the built-ins (``builtins.BUILTIN_TYPES``, handed to the registry
by ``builtins.create_registry``), ``GroupType`` subclasses in plugins loaded through the
``issue_platform.issue_types`` entry point (such a class registers itself when it is defined,
SPEC §3), and the admin API (handed to the registry by the service layer after loading them
from the database).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from typing import Any, ClassVar

SLUG_RE = re.compile(r"^[a-z0-9_-]{1,64}$")


class GroupCategory(IntEnum):
    """Built-in categories (id = value)."""

    ERROR = 1
    PERFORMANCE = 2
    PROFILE = 3
    CRON = 4
    REPLAY = 5
    FEEDBACK = 6
    UPTIME = 7
    METRIC_ALERT = 8


class PriorityLevel(IntEnum):
    """Issue priorities."""

    LOW = 25
    MEDIUM = 50
    HIGH = 75


PRIORITY_NAMES = {p.value: p.name.lower() for p in PriorityLevel}
PRIORITY_VALUES = {p.name.lower(): p.value for p in PriorityLevel}


def parse_priority(value: Any) -> int:
    """A priority given as 25/50/75 or low/medium/high, as its number."""
    if isinstance(value, bool):
        raise ValueError("priority must be 25, 50, 75, low, medium or high")
    if isinstance(value, int) and value in PRIORITY_NAMES:
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in PRIORITY_VALUES:
            return PRIORITY_VALUES[v]
        if v.isdigit() and int(v) in PRIORITY_NAMES:
            return int(v)
    raise ValueError("priority must be 25, 50, 75, low, medium or high")


@dataclass(frozen=True)
class Category:
    """A category of issue types."""

    id: int
    slug: str
    description: str = ""
    builtin: bool = False

    def __post_init__(self) -> None:
        if self.id < 1:
            raise ValueError("category id must be positive")
        if not SLUG_RE.match(self.slug):
            raise ValueError(f"invalid category slug {self.slug!r}")


BUILTIN_CATEGORIES: tuple[Category, ...] = tuple(
    Category(c.value, c.name.lower(), f"Built-in {c.name.lower().replace('_', ' ')} category", True)
    for c in GroupCategory
)


@dataclass(frozen=True)
class NoiseConfig:
    """Keep occurrences pending until ``ignore_limit`` arrive within ``expiry_time``."""

    ignore_limit: int = 2
    expiry_time: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.ignore_limit < 1:
            raise ValueError("noise ignore_limit must be >= 1")
        if self.expiry_time.total_seconds() <= 0:
            raise ValueError("noise expiry_time must be positive")

    @property
    def expiry_seconds(self) -> int:
        """The window length in whole seconds."""
        return int(self.expiry_time.total_seconds())


@dataclass(frozen=True)
class CreationQuota:
    """At most ``limit`` new issues per project and type in any ``window_seconds``."""

    limit: int
    window_seconds: int

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("creation quota limit must be >= 1")
        if self.window_seconds < 1:
            raise ValueError("creation quota window_seconds must be >= 1")


@dataclass(frozen=True)
class IssueType:
    """A registered issue type, whatever its source."""

    type_id: int
    slug: str
    description: str
    category_id: int
    released: bool = False
    noise_config: NoiseConfig | None = None
    enable_auto_resolve: bool = True
    enable_escalation_detection: bool = True
    default_priority: int = PriorityLevel.MEDIUM
    creation_quota: CreationQuota | None = None
    in_default_search: bool = True
    source: str = "code"  # builtin | code | api

    def __post_init__(self) -> None:
        if self.type_id < 1:
            raise ValueError("type_id must be a positive integer")
        if not SLUG_RE.match(self.slug):
            raise ValueError(f"invalid issue type slug {self.slug!r}: use [a-z0-9_-]{{1,64}}")
        if self.default_priority not in PRIORITY_NAMES:
            raise ValueError("default_priority must be low, medium or high")

    @property
    def read_only(self) -> bool:
        """Types defined in code cannot be changed through the API (except rollout flags)."""
        return self.source != "api"


@dataclass(frozen=True)
class GroupType:
    """Base class of issue types written in Python.

    Subclass it as a frozen dataclass with class attributes ``type_id``, ``slug``,
    ``description`` and ``category``; defining the subclass checks them and registers the type
    (the built-ins are checked too, but listed instead of registered).
    """

    type_id: ClassVar[int]
    slug: ClassVar[str]
    description: ClassVar[str]
    category: ClassVar[int]
    released: ClassVar[bool] = False
    noise_config: ClassVar[NoiseConfig | None] = None
    enable_auto_resolve: ClassVar[bool] = True
    enable_escalation_detection: ClassVar[bool] = True
    default_priority: ClassVar[int] = PriorityLevel.MEDIUM
    creation_quota: ClassVar[CreationQuota | None] = None
    in_default_search: ClassVar[bool] = True
    _source: ClassVar[str] = "code"
    # False for the built-ins: ``builtins.BUILTIN_TYPES`` lists them for ``create_registry``.
    _registers_itself: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not hasattr(cls, "type_id"):  # an intermediate base without a type of its own
            return
        issue_type = issue_type_from_class(cls)
        if cls._registers_itself:
            code_types.register(issue_type, origin=origin_of(cls))


def origin_of(cls: type[GroupType]) -> str:
    """Where a type was defined, for the messages naming two clashing types."""
    return f"{cls.__module__}.{cls.__qualname__}"


def issue_type_from_class(cls: type[GroupType]) -> IssueType:
    """The ``IssueType`` a ``GroupType`` subclass describes."""
    for attr in ("type_id", "slug", "description", "category"):
        if not hasattr(cls, attr):
            raise TypeError(f"{cls.__qualname__} must define class attribute {attr!r}")
    return IssueType(
        type_id=int(cls.type_id),
        slug=cls.slug,
        description=cls.description,
        category_id=int(cls.category),
        released=bool(cls.released),
        noise_config=cls.noise_config,
        enable_auto_resolve=bool(cls.enable_auto_resolve),
        enable_escalation_detection=bool(cls.enable_escalation_detection),
        default_priority=int(cls.default_priority),
        creation_quota=cls.creation_quota,
        in_default_search=bool(cls.in_default_search),
        source=cls._source,
    )


class DuplicateIssueType(ValueError):
    """Two types share a type_id or slug."""


@dataclass
class _CodeTypes:
    """Types defined in code, each unique by type_id and slug; see ``code_types``."""

    by_id: dict[int, IssueType] = field(default_factory=dict)
    origins: dict[int, str] = field(default_factory=dict)

    def register(self, issue_type: IssueType, *, origin: str = "") -> None:
        existing = self.by_id.get(issue_type.type_id)
        if existing is not None:
            raise DuplicateIssueType(
                f"issue type_id {issue_type.type_id} defined twice: "
                f"{self.origins.get(issue_type.type_id)} and {origin}"
            )
        for other in self.by_id.values():
            if other.slug == issue_type.slug:
                raise DuplicateIssueType(
                    f"issue type slug {issue_type.slug!r} defined twice: "
                    f"{self.origins.get(other.type_id)} and {origin}"
                )
        self.by_id[issue_type.type_id] = issue_type
        self.origins[issue_type.type_id] = origin

    def unregister(self, type_id: int) -> None:
        """Forget a code type (tests only)."""
        self.by_id.pop(type_id, None)
        self.origins.pop(type_id, None)


code_types = _CodeTypes()
"""The types of plugin classes, registered when their class is defined."""


class Registry:
    """All types and categories: those of ``builtin``, plugin types, and the API's.

    ``builtin`` are the types always there (``builtins.create_registry`` gives the built-ins);
    the types of plugin classes are read from ``code_types`` at every rebuild. A type_id or
    slug of a plugin type that is also a built-in's raises ``DuplicateIssueType`` here.
    """

    def __init__(self, builtin: Iterable[type[GroupType]] = ()) -> None:
        table = _CodeTypes()
        for cls in builtin:
            table.register(issue_type_from_class(cls), origin=origin_of(cls))
        self._builtin = dict(table.by_id)
        for type_id, issue_type in code_types.by_id.items():
            table.register(issue_type, origin=code_types.origins.get(type_id, ""))
        self._lock = threading.Lock()
        self._api_types: dict[int, IssueType] = {}
        self._api_categories: dict[int, Category] = {}
        self._by_id: dict[int, IssueType] = {}
        self._by_slug: dict[str, IssueType] = {}
        self._categories: dict[int, Category] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        by_id = dict(self._builtin)
        for t in code_types.by_id.values():
            by_id.setdefault(t.type_id, t)
        for t in self._api_types.values():
            by_id.setdefault(t.type_id, t)
        by_slug: dict[str, IssueType] = {}
        for t in by_id.values():
            by_slug.setdefault(t.slug, t)
        cats = {c.id: c for c in BUILTIN_CATEGORIES}
        for c in self._api_categories.values():
            cats.setdefault(c.id, c)
        self._by_id, self._by_slug, self._categories = by_id, by_slug, cats

    def set_api_entries(self, types: Iterable[IssueType], categories: Iterable[Category]) -> None:
        """Replace the API-registered types and categories (loaded from the database)."""
        with self._lock:
            self._api_types = {t.type_id: t for t in types}
            self._api_categories = {c.id: c for c in categories}
            self._rebuild()

    def get(self, type_id: int) -> IssueType | None:
        """The type with this id, if registered."""
        return self._by_id.get(type_id)

    def by_slug(self, slug: str) -> IssueType | None:
        """The type with this slug, if registered."""
        return self._by_slug.get(slug)

    def types(self) -> list[IssueType]:
        """Every type, by type_id."""
        return sorted(self._by_id.values(), key=lambda t: t.type_id)

    def categories(self) -> list[Category]:
        """Every category, by id."""
        return sorted(self._categories.values(), key=lambda c: c.id)

    def category(self, ref: int | str) -> Category | None:
        """A category by id or slug (a numeric string counts as an id)."""
        if isinstance(ref, str):
            if ref.strip().isdigit():
                return self._categories.get(int(ref))
            for c in self._categories.values():
                if c.slug == ref:
                    return c
            return None
        return self._categories.get(ref)

    def types_in_category(self, category_id: int) -> list[IssueType]:
        """The types of one category."""
        return [t for t in self.types() if t.category_id == category_id]
