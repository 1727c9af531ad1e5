"""Every table of the service, typed with ``Mapped[]``.

Each table may be filled by its own domain package; they are kept together so the schema can be
read in one place and migrations compared against it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utcnow

HASH_LEN = 32
# The column default; the admin API fills in ISSUE_PLATFORM_DEFAULT_RETENTION_DAYS.
DEFAULT_RETENTION_DAYS = 90


class Organization(Base):
    """A tenant: owns projects and API keys."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    early_adopter: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Project(Base):
    """A project of an organization; issues are per project."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("organization_id", "slug"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    resolve_age_hours: Mapped[int] = mapped_column(Integer, default=0)
    # Days occurrences, issues and logs are kept (retention cleanup, app.retention).
    retention_days: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_RETENTION_DAYS, server_default=str(DEFAULT_RETENTION_DAYS)
    )
    # Next short id to hand out; incremented under the issue-creating transaction.
    next_short_id: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """An organization's API key; only the SHA-256 of the token is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSONType)
    project_ids: Mapped[list[int] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Category(Base):
    """An issue category registered through the admin API (built-ins live in code)."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssueTypeRow(Base):
    """An issue type registered through the admin API (types defined in code are not stored)."""

    __tablename__ = "issue_types"

    type_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int] = mapped_column(Integer)
    released: Mapped[bool] = mapped_column(Boolean, default=False)
    noise_ignore_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    noise_expiry_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enable_auto_resolve: Mapped[bool] = mapped_column(Boolean, default=True)
    enable_escalation_detection: Mapped[bool] = mapped_column(Boolean, default=True)
    default_priority: Mapped[int] = mapped_column(SmallInteger, default=50)
    creation_quota_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    creation_quota_window_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    in_default_search: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RolloutFlag(Base):
    """Stage and organization list of one rollout flag of an unreleased type."""

    __tablename__ = "rollout_flags"

    type_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    stage: Mapped[str] = mapped_column(String(8), default="off")
    organizations: Mapped[list[int]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Group(Base):
    """An issue: occurrences of one project sharing a fingerprint."""

    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("project_id", "hash"),
        UniqueConstraint("project_id", "short_id"),
        # Stream: by project (tenancy) and type, keyset on each sort key with id as tie-breaker.
        Index("ix_groups_project_type_last_seen", "project_id", "type_id", "last_seen", "id"),
        Index("ix_groups_project_last_seen", "project_id", "last_seen", "id"),
        Index("ix_groups_type_last_seen", "type_id", "last_seen", "id"),
        Index("ix_groups_project_first_seen", "project_id", "first_seen", "id"),
        Index("ix_groups_project_times_seen", "project_id", "times_seen", "id"),
        Index("ix_groups_project_priority", "project_id", "priority", "id"),
        # Periodic jobs: substatus transitions (auto-resolve runs per project on
        # ix_groups_project_last_seen; ADR 0009 has the audit).
        Index("ix_groups_substatus_changed", "substatus", "substatus_changed_at"),
        # Creation quota: new issues per project and type in a time window.
        Index("ix_groups_project_type_created", "project_id", "type_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    type_id: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(HASH_LEN))
    short_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(Text)
    subtitle: Mapped[str] = mapped_column(Text, default="")
    culprit: Mapped[str] = mapped_column(String(200), default="")
    level: Mapped[str] = mapped_column(String(8), default="info")
    status: Mapped[int] = mapped_column(SmallInteger, default=0)
    substatus: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    substatus_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    priority: Mapped[int] = mapped_column(SmallInteger, default=50)
    initial_priority: Mapped[int] = mapped_column(SmallInteger, default=50)
    priority_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    times_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    latest_occurrence_id: Mapped[str | None] = mapped_column(String(HASH_LEN), nullable=True)
    # detection_time of the occurrence whose title/subtitle/culprit/level the issue shows.
    latest_detection_time: Mapped[datetime] = mapped_column(UTCDateTime)
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Conditions of archived_until_condition_met: {"count", "window_seconds", "since"} | {"until"}.
    ignore_until: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    # Whether the type's post-process flag was on when the issue was created.
    notify_created: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on every change; the ETag of the issue answer.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupHash(Base):
    """A fingerprint element's hash and the issue it belongs to (one issue per hash and project)."""

    __tablename__ = "group_hashes"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    hash: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)


class Occurrence(Base):
    """An accepted occurrence, as stored; ``group_id`` is null while it waits below a threshold."""

    __tablename__ = "occurrences"
    __table_args__ = (
        Index("ix_occurrences_group_detection", "group_id", "detection_time", "id"),
        # Only occurrences waiting in a noise window are looked up by their window's hash.
        Index(
            "ix_occurrences_pending",
            "project_id",
            "pending_hash",
            "detection_time",
            sqlite_where=text("pending_hash IS NOT NULL"),
            postgresql_where=text("pending_hash IS NOT NULL"),
        ),
        # Retention: a project's expired occurrences by age, and whether an event is still used.
        Index("ix_occurrences_project_detection", "project_id", "detection_time"),
        Index("ix_occurrences_project_event", "project_id", "event_id"),
    )

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), nullable=True
    )
    # Set while the occurrence waits in a noise window (the window's hash); null otherwise.
    pending_hash: Mapped[str | None] = mapped_column(String(HASH_LEN), nullable=True)
    type_id: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(HASH_LEN))
    fingerprint: Mapped[list[str]] = mapped_column(JSONType)
    issue_title: Mapped[str] = mapped_column(Text)
    subtitle: Mapped[str] = mapped_column(Text)
    culprit: Mapped[str] = mapped_column(Text, default="")
    resource_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    evidence_display: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    detection_time: Mapped[datetime] = mapped_column(UTCDateTime)
    level: Mapped[str] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(SmallInteger)
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """The event an occurrence refers to, with the kept keys only."""

    __tablename__ = "events"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Activity(Base):
    """One thing that happened to an issue (status change, regression, …)."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_group_id_id", "group_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StatusChangeRecord(Base):
    """The first answer to a status change with an ``id``, replayed when the id repeats."""

    __tablename__ = "status_change_records"
    # Retention: a project's expired ids by age.
    __table_args__ = (
        Index("ix_status_change_records_project_created", "project_id", "created_at"),
    )

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    response: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HourlyCount(Base):
    """Occurrences of an issue per UTC hour (by detection time); input of the forecast."""

    __tablename__ = "hourly_counts"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    # Hours since the Unix epoch.
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class CounterJournal(Base):
    """Counting changes of ingest transactions waiting for a fold (``ingest.journal``).

    One row per transaction: ``entries`` is a JSON array of per-issue changes (times seen,
    version, first/last seen, newest occurrence, hourly counts); a fold applies and deletes them.
    """

    __tablename__ = "counter_journal"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    entries: Mapped[str] = mapped_column(Text)


class Forecast(Base):
    """The escalation forecast of an issue archived until escalating."""

    __tablename__ = "forecasts"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    start_date: Mapped[str] = mapped_column(String(10))
    ceilings: Mapped[list[int]] = mapped_column(JSONType)


class PendingWindow(Base):
    """A noise window: occurrences of a fingerprint below the type's threshold."""

    __tablename__ = "pending_windows"
    # Retention: windows that closed.
    __table_args__ = (Index("ix_pending_windows_ends", "window_ends_at"),)

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    hash: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    type_id: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    window_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Webhook(Base):
    """A project's notification receiver."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """Outbox row and delivery log entry of one notification to one webhook."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), nullable=True
    )
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    # pending | delivered | failed
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
