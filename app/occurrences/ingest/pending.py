"""Noise windows: occurrences of a new fingerprint wait below the type's threshold.

Only types with a noise configuration get here. The window row (``pending_windows``) is read
locked and written as the occurrence is decided, since the next occurrence of the same
fingerprint in the batch counts on it; the pending occurrences themselves are queued with the
batch's rows (``pending_hash`` set) and adopted by the issue their threshold opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.issue_types.registry import IssueType, NoiseConfig
from app.models import Occurrence, PendingWindow
from app.occurrences.ingest.batch import Batch, Row
from app.occurrences.ingest.outcomes import Accepted, accepted
from app.occurrences.ingest.rules import Issue, count_in, epoch_hour
from app.occurrences.noise import Window, admit
from app.occurrences.validation import ValidOccurrence


@dataclass(frozen=True, slots=True)
class Stored:
    """A pending occurrence stored by an earlier transaction (what counting needs of it)."""

    id: str
    issue_title: str
    subtitle: str
    culprit: str
    level: str
    detection_time: datetime


Waiting = Stored | Row


def admit_one(
    batch: Batch, occ: ValidOccurrence, issue_type: IssueType, cfg: NoiseConfig, primary: str
) -> Accepted | list[Waiting]:
    """Count the occurrence into its window: its answer, or the occurrences an issue adopts."""
    session = batch.session
    row = session.get(PendingWindow, (occ.project_id, primary), with_for_update=True)
    if row is not None and row.type_id != occ.type_id:
        return accepted(occ, "dropped", reason="type_mismatch")
    window = Window(row.count, row.window_started_at, row.window_ends_at) if row else None
    admission = admit(
        window,
        occ.detection_time,
        ignore_limit=cfg.ignore_limit,
        expiry=timedelta(seconds=cfg.expiry_seconds),
    )
    if not admission.reached:
        if admission.restarted:
            _discard(batch, occ.project_id, primary)
        _save(batch, row, occ, primary, admission.window, cfg.ignore_limit)
        batch.queue(occ, None, issue_type, pending_hash=primary)
        noise = {
            "count": admission.window.count,
            "threshold": cfg.ignore_limit,
            "window_ends_at": admission.window.ends_at,
        }
        return accepted(occ, "pending", noise=noise)
    if batch.quota_used_up(occ, issue_type):
        return accepted(occ, "rate_limited", reason="creation_quota")
    waiting: list[Waiting] = []
    if admission.restarted:
        _discard(batch, occ.project_id, primary)
    else:
        waiting = _waiting(batch, occ.project_id, primary)
    if row is not None:
        session.delete(row)
    return waiting


def adopt(batch: Batch, issue: Issue, waiting: list[Waiting]) -> None:
    """The window's pending occurrences join the issue its threshold opened (counted in)."""
    if any(isinstance(w, Stored) for w in waiting):
        batch.adopted.append((issue.project_id, issue.hash, issue))
    for one in waiting:
        _adopt_one(batch, issue, one)


def _adopt_one(batch: Batch, issue: Issue, waiting: Waiting) -> None:
    if isinstance(waiting, Row):
        waiting.issue = issue
        waiting.pending_hash = None
        count_in(issue, waiting.occ)
        moment = waiting.occ.detection_time
    else:
        count_in(issue, waiting)
        moment = waiting.detection_time
    batch.hourly[(issue, epoch_hour(moment))] += 1


def _save(
    batch: Batch,
    row: PendingWindow | None,
    occ: ValidOccurrence,
    primary: str,
    window: Window,
    threshold: int,
) -> None:
    if row is None:
        row = PendingWindow(project_id=occ.project_id, hash=primary, type_id=occ.type_id)
        batch.session.add(row)
    row.fingerprint = occ.fingerprint[0]
    row.count = window.count
    row.threshold = threshold
    row.window_started_at = window.started_at
    row.window_ends_at = window.ends_at
    batch.session.flush()


def _discard(batch: Batch, project_id: int, primary: str) -> None:
    """Occurrences of an expired window stay stored (ids stay duplicates) but no longer count."""
    batch.session.execute(
        update(Occurrence)
        .where(Occurrence.project_id == project_id, Occurrence.pending_hash == primary)
        .values(pending_hash=None)
    )
    for row in batch.rows.values():
        if row.pending_hash == primary and row.occ.project_id == project_id:
            row.pending_hash = None


def _waiting(batch: Batch, project_id: int, primary: str) -> list[Waiting]:
    """The window's pending occurrences: stored earlier (adopted by an UPDATE), or queued."""
    found: list[Waiting] = [
        Stored(*r)
        for r in batch.session.execute(
            select(
                Occurrence.id,
                Occurrence.issue_title,
                Occurrence.subtitle,
                Occurrence.culprit,
                Occurrence.level,
                Occurrence.detection_time,
            ).where(Occurrence.project_id == project_id, Occurrence.pending_hash == primary)
        )
    ]
    found += [
        row
        for row in batch.rows.values()
        if row.pending_hash == primary and row.occ.project_id == project_id
    ]
    return found
