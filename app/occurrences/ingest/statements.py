"""Driver-level SQL of the ingest pipeline, one fixed text per dialect (ADR 0006, 0009).

The statements go straight to the DBAPI cursor of the transaction's connection,
with values already in the driver's form: SQLAlchemy's per-statement and per-row bind processing
cost more than SQLite itself did. Id lists travel as one JSON array (SQLite ``json_each``) or one
array parameter (PostgreSQL ``= ANY``), so the driver's statement cache (sqlite3) and prepared
statements (psycopg) are reused. The columns and text forms are the ORM's: rows written here read
back the same through the models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.db import json_text
from app.occurrences.ingest import driver
from app.occurrences.ingest.rules import Counted, Issue
from app.occurrences.validation import truncate_culprit

OCCURRENCE_COLUMNS = (
    "project_id",
    "id",
    "group_id",
    "pending_hash",
    "type_id",
    "event_id",
    "fingerprint",
    "issue_title",
    "subtitle",
    "culprit",
    "resource_id",
    "evidence_data",
    "evidence_display",
    "detection_time",
    "level",
    "priority",
    "assignee",
    "received_at",
)
# A new issue's columns (resolved_at and ignore_until stay NULL).
ISSUE_COLUMNS = (
    "project_id",
    "type_id",
    "hash",
    "short_id",
    "title",
    "subtitle",
    "culprit",
    "level",
    "status",
    "substatus",
    "substatus_changed_at",
    "priority",
    "initial_priority",
    "priority_locked",
    "first_seen",
    "last_seen",
    "times_seen",
    "latest_occurrence_id",
    "latest_detection_time",
    "assignee",
    "notify_created",
    "version",
    "created_at",
    "updated_at",
)
# Rows per multi-row issue insert: below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
ISSUE_CHUNK = 500
# The PostgreSQL array type of each of ISSUE_COLUMNS (the issue insert over arrays).
ISSUE_ARRAY_TYPES = (
    "bigint", "integer", "text", "bigint", "text", "text", "text", "text", "smallint",
    "smallint", "timestamptz", "smallint", "smallint", "boolean", "timestamptz", "timestamptz",
    "bigint", "text", "timestamptz", "text", "boolean", "integer", "timestamptz", "timestamptz",
)  # fmt: skip
NEWEST_COLUMNS = (
    "title",
    "subtitle",
    "culprit",
    "level",
    "latest_occurrence_id",
    "latest_detection_time",
)


def newest_values(n: Counted, t: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """NEWEST_COLUMNS' values from an issue's newest occurrence, its time converted by ``t``."""
    return (n.issue_title, n.subtitle, truncate_culprit(n.culprit), n.level, n.id,
            t(n.detection_time))  # fmt: skip


def sqlite_time(moment: datetime) -> str:
    """A UTC moment in SQLAlchemy's SQLite DATETIME text form (naive UTC, microseconds)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_read_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class ProjectInfo:
    """What ingest reads of a project and its organization."""

    id: int
    organization_id: int
    resolve_age_hours: int
    early_adopter: bool
    retention_days: int


class Times:
    """The time conversions of one transaction, each distinct value converted once.

    On SQLite a time is SQLAlchemy's fixed-width naive-UTC text; an ingest converts the same
    few instants many times (detection times, now). PostgreSQL takes aware datetimes as they are.
    """

    def __init__(self, sql: Statements) -> None:
        self._to: dict[datetime, Any] = {}
        self._from: dict[Any, datetime] = {}
        if sql.postgres:
            self.db = self.read = _same  # type: ignore[method-assign,assignment]

    def db(self, moment: datetime) -> Any:
        """A time as the driver stores it."""
        found = self._to.get(moment)
        if found is None:
            found = self._to[moment] = sqlite_time(moment)
        return found

    def read(self, value: Any) -> datetime:
        """A stored time as an aware UTC datetime."""
        found = self._from.get(value)
        if found is None:
            found = self._from[value] = _sqlite_read_time(value)
        return found


# Which column groups an issue UPDATE sets: first_seen, last_seen, newest, priority, status.
Shape = tuple[bool, bool, bool, bool, bool]


def issue_update(
    issue_id: int,
    added: int,
    bumps: int,
    when: Any,
    first_seen: Any | None,
    last_seen: Any | None,
    newest: tuple[Any, ...] | None,
    priority: int | None,
    status: tuple[Any, ...] | None,
) -> tuple[Shape, list[Any]]:
    """The aggregated change of one existing issue: its UPDATE's shape and parameters.

    A column group left out (None) is not in the UPDATE, so the indexes on it are not
    rewritten; ``newest`` holds NEWEST_COLUMNS' values (they change together or not at all),
    ``status`` the status, substatus and substatus_changed_at. The parameters are in the order
    of ``Statements.update_issue``. Built once per touched issue: no object, one pass.
    """
    params = [added, bumps, when]
    if first_seen is not None:
        params.append(first_seen)
    if last_seen is not None:
        params.append(last_seen)
    if newest is not None:
        params += newest
    if priority is not None:
        params.append(priority)
    if status is not None:
        params += status
    params.append(issue_id)
    shape = (
        first_seen is not None,
        last_seen is not None,
        newest is not None,
        priority is not None,
        status is not None,
    )
    return shape, params


class Statements:
    """The pipeline's SQL of one dialect, with its value conversions."""

    # PostgreSQL: the per-row statements of ``__init__`` as one statement over a binary array per
    # column (``execute_set``); a row costs the server far less than one execution each.
    insert_events_set = (
        "INSERT INTO events (project_id, event_id, data, received_at) "
        "SELECT p, e, CAST(d AS jsonb), r FROM unnest(%b::bigint[], %b::text[], %b::text[], "
        "%b::timestamptz[]) AS t(p, e, d, r) ON CONFLICT (project_id, event_id) DO NOTHING"
    )
    upsert_hourly_set = (
        "INSERT INTO hourly_counts (group_id, hour, count) "
        "SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[]) "
        "ON CONFLICT (group_id, hour) "
        "DO UPDATE SET count = hourly_counts.count + excluded.count"
    )
    insert_issues_set = (
        f"INSERT INTO groups ({', '.join(ISSUE_COLUMNS)}) "  # noqa: S608
        f"SELECT * FROM unnest({', '.join(f'%b::{t}[]' for t in ISSUE_ARRAY_TYPES)}) "
        "RETURNING id, project_id, hash"
    )
    insert_hashes_set = (
        "INSERT INTO group_hashes (project_id, hash, group_id) "
        "SELECT * FROM unnest(%b::bigint[], %b::text[], %b::bigint[])"
    )

    def __init__(self, dialect: str) -> None:
        self.postgres = postgres = dialect == "postgresql"
        p = "%s" if postgres else "?"
        self.p = p
        self.time = _same if postgres else sqlite_time
        self.read_time = _same if postgres else _sqlite_read_time
        # sqlite3 binds a bool through its slow adaptation path (~0.35 µs); SQLite stores 0/1.
        self.boolean: Callable[[bool], Any] = _same if postgres else int
        ids = "= ANY(%s)" if postgres else "IN (SELECT value FROM json_each(?))"
        self.project_rows = (
            "SELECT p.id, p.organization_id, p.resolve_age_hours, o.early_adopter, "  # noqa: S608
            "p.retention_days "
            "FROM projects p JOIN organizations o ON o.id = p.organization_id "
            f"WHERE p.id {ids}"
        )
        self.webhook_projects = f"SELECT DISTINCT project_id FROM webhooks WHERE project_id {ids}"  # noqa: S608
        self._lookups(postgres, ids)
        json_value = f"CAST({p} AS jsonb)" if postgres else p
        columns = ", ".join(OCCURRENCE_COLUMNS)
        # Occurrences: INSERT on SQLite, COPY on PostgreSQL (write.py).
        self.insert_occurrences = (
            f"INSERT INTO occurrences ({columns}) "  # noqa: S608
            f"VALUES ({', '.join('?' for _ in OCCURRENCE_COLUMNS)})"
        )
        self.copy_occurrences = f"COPY occurrences ({columns}) FROM STDIN"  # noqa: S608
        self.insert_events = (
            "INSERT INTO events (project_id, event_id, data, received_at) "  # noqa: S608
            f"VALUES ({p}, {p}, {json_value}, {p}) ON CONFLICT (project_id, event_id) DO NOTHING"
        )
        self.upsert_hourly = (
            f"INSERT INTO hourly_counts (group_id, hour, count) VALUES ({p}, {p}, {p}) "  # noqa: S608
            "ON CONFLICT (group_id, hour) "
            "DO UPDATE SET count = hourly_counts.count + excluded.count"
        )
        # A concurrent writer that linked the same hash first makes this insert fail with a
        # unique-key error: the transaction is retried and then sees that hash as known.
        self.insert_hashes = (
            "INSERT INTO group_hashes (project_id, hash, group_id) "  # noqa: S608
            f"VALUES ({p}, {p}, {p})"
        )
        self.take_short_ids = (
            f"UPDATE projects SET next_short_id = next_short_id + {p} "  # noqa: S608
            f"WHERE id = {p} RETURNING next_short_id"
        )
        self.adopt_pending = (
            f"UPDATE occurrences SET group_id = {p}, pending_hash = NULL "  # noqa: S608
            f"WHERE project_id = {p} AND pending_hash = {p}"
        )
        # The counter journal (journal.py): one row per transaction, taken whole by a fold.
        self.insert_journal = f"INSERT INTO counter_journal (entries) VALUES ({p})"  # noqa: S608
        self.take_journal = "DELETE FROM counter_journal RETURNING id, entries"
        # Locked in the ingest's order: by project, then id (batch.load_known).
        self.issues_to_fold = (
            "SELECT id, first_seen, last_seen, latest_detection_time, updated_at "  # noqa: S608
            f"FROM groups WHERE id {ids} ORDER BY project_id, id"
            + (" FOR UPDATE" if postgres else "")
        )
        self._update_sql: dict[tuple[bool, ...], str] = {}
        self._insert_sql: dict[int, str] = {}

    def _lookups(self, postgres: bool, ids: str) -> None:
        """The reads of a transaction: stored occurrence ids, and the issues of known hashes."""
        known_columns = (
            "g.id, g.type_id, g.status, g.substatus, g.first_seen, g.last_seen, g.priority, "
            "g.priority_locked, g.latest_detection_time"
        )
        if postgres:
            # Per-id index look-ups, whatever the table statistics say: with the plain
            # `id = ANY(…)` form, a freshly grown table (not yet analyzed) was scanned whole.
            # The OFFSET 0 keeps the planner from flattening the lateral subquery into a join.
            # Parameters: (ids, project_id). Issues are locked in id order (no deadlock cycle).
            self.existing = (
                "SELECT k.id, o.group_id FROM unnest(CAST(%s AS varchar[])) AS k(id) "
                "CROSS JOIN LATERAL (SELECT group_id FROM occurrences "
                "WHERE project_id = %s AND id = k.id OFFSET 0) AS o"
            )
            self.known = (
                f"SELECT k.hash, {known_columns} "  # noqa: S608
                "FROM unnest(CAST(%s AS varchar[])) AS k(hash) "
                "CROSS JOIN LATERAL (SELECT group_id FROM group_hashes "
                "WHERE project_id = %s AND hash = k.hash OFFSET 0) AS gh "
                "JOIN groups g ON g.id = gh.group_id ORDER BY g.id FOR UPDATE OF g"
            )
        else:
            # Parameters: (ids as one JSON array, project_id); SQLite looks each id up.
            self.existing = (
                "SELECT id, group_id FROM occurrences "  # noqa: S608
                f"WHERE id {ids} AND project_id = ?"
            )
            # No ORDER BY: SQLite has one writer at a time, so no lock order to keep, and the
            # sort cost a temporary B-tree per transaction (0.2 µs per hash); the writes sort
            # the issues themselves (write._count).
            self.known = (
                f"SELECT gh.hash, {known_columns} "  # noqa: S608
                "FROM group_hashes gh JOIN groups g ON g.id = gh.group_id "
                f"WHERE gh.hash {ids} AND gh.project_id = ?"
            )

    def insert_issues(self, rows: int) -> str:
        """A multi-row insert of ``rows`` new issues returning (id, project_id, hash)."""
        found = self._insert_sql.get(rows)
        if found is None:
            one = "(" + ", ".join(self.p for _ in ISSUE_COLUMNS) + ")"
            found = (
                f"INSERT INTO groups ({', '.join(ISSUE_COLUMNS)}) "  # noqa: S608
                f"VALUES {', '.join(one for _ in range(rows))} RETURNING id, project_id, hash"
            )
            self._insert_sql[rows] = found
        return found

    def update_issue(self, shape: Shape) -> str:
        """The UPDATE of one issue setting only the column groups of ``shape`` (cached)."""
        found = self._update_sql.get(shape)
        if found is None:
            p = self.p
            first, last, newest, priority, status = shape
            sets = [
                f"times_seen = times_seen + {p}",
                f"version = version + {p}",
                f"updated_at = {p}",
            ]
            if first:
                sets.append(f"first_seen = {p}")
            if last:
                sets.append(f"last_seen = {p}")
            if newest:
                sets += [f"{c} = {p}" for c in NEWEST_COLUMNS]
            if priority:
                sets.append(f"priority = {p}")
            if status:
                sets += [f"status = {p}", f"substatus = {p}", f"substatus_changed_at = {p}"]
                sets += ["resolved_at = NULL", "ignore_until = NULL"]
            found = f"UPDATE groups SET {', '.join(sets)} WHERE id = {p}"  # noqa: S608
            self._update_sql[shape] = found
        return found

    def update_issue_set(self, shape: Shape) -> str:
        """``update_issue`` of many issues at once over arrays (PostgreSQL; cached).

        Its parameters are the columns of ``issue_update``'s parameter rows, in the same order.
        """
        key = (True, *shape)
        found = self._update_sql.get(key)
        if found is None:
            first, last, newest, priority, status = shape
            columns = [("added", "bigint"), ("bumps", "bigint"), ("updated_at", "timestamptz")]
            columns += [("first_seen", "timestamptz")] if first else []
            columns += [("last_seen", "timestamptz")] if last else []
            if newest:
                columns += [(c, "text") for c in NEWEST_COLUMNS[:-1]]
                columns += [(NEWEST_COLUMNS[-1], "timestamptz")]
            columns += [("priority", "smallint")] if priority else []
            if status:
                columns += [("status", "smallint"), ("substatus", "smallint")]
                columns += [("substatus_changed_at", "timestamptz")]
            sets = ["times_seen = g.times_seen + v.added", "version = g.version + v.bumps"]
            sets += [f"{c} = v.{c}" for c, _ in columns[2:]]
            if status:
                sets += ["resolved_at = NULL", "ignore_until = NULL"]
            arrays = ", ".join(f"%b::{t}[]" for _, t in [*columns, ("id", "bigint")])
            names = ", ".join(c for c, _ in [*columns, ("id", "bigint")])
            found = (
                f"UPDATE groups AS g SET {', '.join(sets)} "  # noqa: S608
                f"FROM unnest({arrays}) AS v({names}) WHERE g.id = v.id"
            )
            self._update_sql[key] = found
        return found

    def ids_param(self, values: Sequence[Any]) -> Any:
        """An id list as the dialect's single parameter."""
        return list(values) if self.postgres else json_text(list(values))


_STATEMENTS: dict[str, Statements] = {}


def statements(dialect: str) -> Statements:
    """The statements of a dialect (built once per dialect)."""
    found = _STATEMENTS.get(dialect)
    if found is None:
        found = _STATEMENTS[dialect] = Statements(dialect)
    return found


def projects(cur: Any, sql: Statements, ids: Sequence[int]) -> list[ProjectInfo]:
    """The projects among ``ids`` that exist, with their organization's early-adopter flag."""
    rows = driver.fetch(cur, sql.project_rows, (sql.ids_param(ids),))
    return [ProjectInfo(p, o, age, bool(early), days) for p, o, age, early, days in rows]


def existing_occurrences(
    cur: Any, sql: Statements, project_id: int, ids: Sequence[str]
) -> list[tuple[str, int | None]]:
    """Stored (id, group_id) among ``ids`` of one project."""
    return driver.fetch(cur, sql.existing, (sql.ids_param(ids), project_id))


def known_issues(
    cur: Any, sql: Statements, project_id: int, hashes: Sequence[str], times: Times
) -> list[Issue]:
    """Issues reached by ``hashes`` (one per hash); on PostgreSQL locked FOR UPDATE in id order.

    An issue reached by several hashes comes once per hash: the caller keeps one state per id.
    """
    read = times.read
    rows = driver.fetch(cur, sql.known, (sql.ids_param(hashes), project_id))
    # Positional: one Issue per touched issue and transaction, often one per occurrence.
    return [
        Issue(
            gid,
            gid,
            project_id,
            type_id,
            h,
            status,
            substatus,
            read(first),
            read(last),
            priority,
            bool(locked),
            read(latest),
        )
        for h, gid, type_id, status, substatus, first, last, priority, locked, latest in rows
    ]
