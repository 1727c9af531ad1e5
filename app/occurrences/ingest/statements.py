"""Driver-level statements of the ingest hot path (ADR 0006).

The statements that run once per occurrence or once per joined issue go straight to the DBAPI
cursor of the session's connection (same transaction), with values already in the driver's
form: SQLAlchemy's per-statement and per-row bind processing cost more than SQLite itself did.
Everything else of the ingest (issue creation, noise windows, regressions) stays on the ORM.

Each statement is one fixed SQL text per dialect, so the driver's statement cache (sqlite3) and
server-side prepared statements (psycopg) are reused: id lists travel as one JSON array
(SQLite ``json_each``) or one array parameter (PostgreSQL ``= ANY``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.db import json_text

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


def sqlite_time(moment: datetime) -> str:
    """A UTC moment in SQLAlchemy's SQLite DATETIME text form (naive UTC, microseconds)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_canonical(value: str) -> str:
    """A stored SQLite time in the one text form whose order is the time order."""
    if len(value) == 26 and value[10] == " ":
        return value
    return sqlite_time(datetime.fromisoformat(value).replace(tzinfo=UTC))


def _same(value: Any) -> Any:
    return value


class DbTimes:
    """Times in the database's own form, converted once per batch and instant.

    On SQLite that is SQLAlchemy's fixed-width text (its order is the time order, so issue
    times are compared without parsing them); on PostgreSQL the aware datetime itself.
    """

    def __init__(self, convert: Any) -> None:
        self._convert = convert
        self._seen: dict[datetime, Any] = {}

    def __call__(self, moment: datetime) -> Any:
        found = self._seen.get(moment)
        if found is None:
            found = self._seen[moment] = self._convert(moment)
        return found


@dataclass(frozen=True)
class ProjectInfo:
    """What ingest reads of a project and its organization."""

    id: int
    organization_id: int
    resolve_age_hours: int
    early_adopter: bool


@dataclass(slots=True)
class KnownGroup:
    """An issue reached by a hash of the batch, with what plain joining needs of it.

    Its times are in the database's form (see DbTimes).
    """

    hash: str
    id: int
    type_id: int
    status: int
    first_seen: Any
    last_seen: Any
    latest_detection_time: Any
    priority_locked: bool


@dataclass(slots=True)
class GroupUpdate:
    """The aggregated change of one issue by the plain occurrences of a batch.

    None means unchanged: the column is left out of the UPDATE, so the indexes on it (several
    on ``last_seen``, one on ``first_seen`` and ``priority``) are not rewritten. The newest
    occurrence's fields (title … latest_detection_time) change together or not at all.
    """

    id: int
    added: int
    # Times in the database's form (DbTimes).
    first_seen: Any | None
    last_seen: Any | None
    latest_detection_time: Any | None
    title: str | None
    subtitle: str | None
    culprit: str | None
    level: str | None
    latest_occurrence_id: str | None
    priority: int | None


class HotStatements:
    """The hot-path SQL of one dialect, with its value conversions."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        p = "%s" if self.postgres else "?"
        self.time = _same if self.postgres else sqlite_time
        self.canonical_time = _same if self.postgres else _sqlite_canonical
        ids = "= ANY(%s)" if self.postgres else "IN (SELECT value FROM json_each(?))"
        self.project_rows = (
            "SELECT p.id, p.organization_id, p.resolve_age_hours, o.early_adopter "  # noqa: S608
            "FROM projects p JOIN organizations o ON o.id = p.organization_id "
            f"WHERE p.id {ids}"
        )
        if self.postgres:
            # Per-id index look-ups, whatever the table statistics say: with the plain
            # `id = ANY(…)` form, a freshly grown table (not yet analyzed) was scanned whole.
            # The OFFSET 0 keeps the planner from flattening the lateral subquery into a join.
            # Parameters: (ids, project_id).
            self.existing = (
                "SELECT k.id, o.group_id FROM unnest(CAST(%s AS varchar[])) AS k(id) "
                "CROSS JOIN LATERAL (SELECT group_id FROM occurrences "
                "WHERE project_id = %s AND id = k.id OFFSET 0) AS o"
            )
            self.known = (
                "SELECT k.hash, g.id, g.type_id, g.status, g.first_seen, g.last_seen, "
                "g.latest_detection_time, g.priority_locked "
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
            self.known = (
                "SELECT gh.hash, g.id, g.type_id, g.status, g.first_seen, g.last_seen, "  # noqa: S608
                "g.latest_detection_time, g.priority_locked "
                "FROM group_hashes gh JOIN groups g ON g.id = gh.group_id "
                f"WHERE gh.hash {ids} AND gh.project_id = ? ORDER BY g.id"
            )
        json_value = f"CAST({p} AS jsonb)" if self.postgres else p
        columns = ", ".join(OCCURRENCE_COLUMNS)
        # Occurrences: INSERT on SQLite, COPY on PostgreSQL (write_batch).
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
        # unique-key error: the batch is retried and then sees that hash as known.
        self.link_hash = (
            "INSERT INTO group_hashes (project_id, hash, group_id) "  # noqa: S608
            f"VALUES ({p}, {p}, {p})"
        )
        self._p = p
        self._update_sql: dict[tuple[bool, bool, bool, bool], str] = {}

    def update_groups(self, first: bool, last: bool, newest: bool, priority: bool) -> str:
        """The UPDATE of one issue that sets only the columns named (texts cached by shape)."""
        key = (first, last, newest, priority)
        found = self._update_sql.get(key)
        if found is None:
            p = self._p
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
                sets += [
                    f"{c} = {p}"
                    for c in (
                        "title",
                        "subtitle",
                        "culprit",
                        "level",
                        "latest_occurrence_id",
                        "latest_detection_time",
                    )
                ]
            if priority:
                sets.append(f"priority = {p}")
            found = f"UPDATE groups SET {', '.join(sets)} WHERE id = {p}"  # noqa: S608
            self._update_sql[key] = found
        return found

    def ids_param(self, values: Sequence[Any]) -> Any:
        """An id list as the dialect's single parameter."""
        return list(values) if self.postgres else json_text(list(values))

    def times(self) -> DbTimes:
        """A converter of this dialect for one batch."""
        return DbTimes(self.time)

    def occurrence_rows(self, rows: Sequence[dict[str, Any]], t: DbTimes) -> list[tuple[Any, ...]]:
        """Queued occurrences (column -> value) as the insert's parameters, in column order."""
        return [
            (
                r["project_id"],
                r["id"],
                r["group_id"],
                r["pending_hash"],
                r["type_id"],
                r["event_id"],
                json_text(r["fingerprint"]),
                r["issue_title"],
                r["subtitle"],
                r["culprit"],
                r["resource_id"],
                json_text(r["evidence_data"]),
                json_text(r["evidence_display"]),
                t(r["detection_time"]),
                r["level"],
                r["priority"],
                r["assignee"],
                t(r["received_at"]),
            )
            for r in rows
        ]


_STATEMENTS: dict[str, HotStatements] = {}


def statements(session: Session) -> HotStatements:
    """The hot statements of the session's dialect (built once per dialect)."""
    name = session.get_bind().dialect.name
    found = _STATEMENTS.get(name)
    if found is None:
        found = _STATEMENTS[name] = HotStatements(name)
    return found


def cursor(session: Session) -> Any:
    """A DBAPI cursor on the session's connection, inside its open transaction.

    Taken once per transaction: each ``session.connection()`` walks SQLAlchemy's transaction
    state machinery.
    """
    return session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]


@contextmanager
def driver_errors(statement: str) -> Iterator[None]:
    """Raise driver errors as SQLAlchemy's (IntegrityError, OperationalError, …).

    Statements sent to the raw cursor bypass SQLAlchemy's translation; the retry of lost races
    (``service._retrying``) and the 503 handling of an unavailable database both catch
    SQLAlchemy's types. Parameters are never put into the message.
    """
    try:
        yield
    except sqlite3.Error as exc:
        raise DBAPIError.instance(
            statement, None, exc, sqlite3.Error, hide_parameters=True
        ) from exc
    except psycopg.Error as exc:
        raise DBAPIError.instance(
            statement, None, exc, psycopg.Error, hide_parameters=True
        ) from exc


def projects(cur: Any, sql: HotStatements, ids: Sequence[int]) -> list[ProjectInfo]:
    """The projects among ``ids`` that exist, with their organization's early-adopter flag."""
    with driver_errors(sql.project_rows):
        cur.execute(sql.project_rows, (sql.ids_param(ids),))
        rows = cur.fetchall()
    return [ProjectInfo(p, o, age, bool(early)) for p, o, age, early in rows]


def existing_occurrences(
    cur: Any, sql: HotStatements, project_id: int, ids: Sequence[str]
) -> Iterable[tuple[str, int | None]]:
    """Stored (id, group_id) among ``ids`` of one project."""
    with driver_errors(sql.existing):
        cur.execute(sql.existing, (sql.ids_param(ids), project_id))
        rows: list[tuple[str, int | None]] = cur.fetchall()
    return rows


def known_groups(
    cur: Any, sql: HotStatements, project_id: int, hashes: Sequence[str]
) -> list[KnownGroup]:
    """Issues reached by ``hashes``, in id order (locked FOR UPDATE on PostgreSQL)."""
    with driver_errors(sql.known):
        cur.execute(sql.known, (sql.ids_param(hashes), project_id))
        rows = cur.fetchall()
    read = sql.canonical_time
    return [
        KnownGroup(h, gid, type_id, status, read(first), read(last), read(latest), bool(locked))
        for h, gid, type_id, status, first, last, latest, locked in rows
    ]


def link_hashes(
    cur: Any, sql: HotStatements, project_id: int, group_id: int, hashes: Sequence[str]
) -> None:
    """Link hashes that no issue has to the issue (a unique-key error if one has it by now)."""
    with driver_errors(sql.link_hash):
        cur.executemany(sql.link_hash, [(project_id, h, group_id) for h in hashes])


def write_batch(
    cur: Any,
    sql: HotStatements,
    *,
    now: datetime,
    events: Sequence[tuple[int, str, dict[str, Any]]],
    occurrences: Sequence[dict[str, Any]],
    hourly: Sequence[tuple[int, int, int]],
    groups: Sequence[GroupUpdate],
    times: DbTimes,
) -> None:
    """Every row of a batch: events, occurrences, hourly counts and plain issue updates."""
    when = times(now)
    if events:
        with driver_errors(sql.insert_events):
            cur.executemany(
                sql.insert_events, [(p, e, json_text(data), when) for p, e, data in events]
            )
    if occurrences:
        rows = sql.occurrence_rows(occurrences, times)
        if sql.postgres:
            # COPY: far less work per row than INSERT on both sides (no per-row statement);
            # duplicates were filtered before, and a racing writer's row makes the COPY fail
            # with a unique-key error like an INSERT would (the batch is retried).
            with driver_errors(sql.copy_occurrences), cur.copy(sql.copy_occurrences) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            with driver_errors(sql.insert_occurrences):
                cur.executemany(sql.insert_occurrences, rows)
    if hourly:
        with driver_errors(sql.upsert_hourly):
            cur.executemany(sql.upsert_hourly, hourly)
    if groups:
        by_shape: dict[tuple[bool, bool, bool, bool], list[tuple[Any, ...]]] = {}
        for g in groups:
            shape = (
                g.first_seen is not None,
                g.last_seen is not None,
                g.latest_detection_time is not None,
                g.priority is not None,
            )
            params: list[Any] = [g.added, g.added, when]
            if g.first_seen is not None:
                params.append(g.first_seen)
            if g.last_seen is not None:
                params.append(g.last_seen)
            if g.latest_detection_time is not None:
                params += [
                    g.title,
                    g.subtitle,
                    g.culprit,
                    g.level,
                    g.latest_occurrence_id,
                    g.latest_detection_time,
                ]
            if g.priority is not None:
                params.append(g.priority)
            params.append(g.id)
            by_shape.setdefault(shape, []).append(tuple(params))
        for shape, updates in by_shape.items():
            statement = sql.update_groups(*shape)
            with driver_errors(statement):
                cur.executemany(statement, updates)
