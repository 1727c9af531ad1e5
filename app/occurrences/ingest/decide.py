"""Deciding one occurrence against the batch's state: join, regress, wait, or open an issue.

Every occurrence of a group commit goes through ``decide_one`` once, in order; nothing is
written here (the noise windows excepted, see pending.py): the changes accumulate in the
:class:`~app.occurrences.ingest.batch.Batch` and write.py writes them set-based.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.issue_types.flags import FlagKind
from app.issue_types.registry import IssueType
from app.occurrences.grouping import decide
from app.occurrences.ingest import pending
from app.occurrences.ingest.batch import Batch, priority_of
from app.occurrences.ingest.outcomes import Accepted, Outcome, Rejected, Rejection, accepted
from app.occurrences.ingest.rules import Issue, epoch_hour, join, open_issue
from app.occurrences.ingest.statements import ProjectInfo
from app.occurrences.validation import ValidOccurrence

# Read once (an Enum member looked up on its class costs about 70 ns on Python 3.11).
INGEST, POST_PROCESS = FlagKind.INGEST, FlagKind.POST_PROCESS


def decide_one(
    batch: Batch,
    occ: ValidOccurrence,
    issue_type: IssueType,
    hashes: list[str],
    project: ProjectInfo,
) -> Outcome:
    """Duplicates, rollout and event checks, then grouping (``group``)."""
    key = (occ.project_id, occ.id)
    if key in batch.existing:
        return accepted(occ, "duplicate", batch.existing[key])
    queued = batch.rows.get(key)
    if queued is not None:
        return accepted(occ, "duplicate", queued.issue)
    if not batch.flag(issue_type, INGEST, project):
        return accepted(occ, "dropped", reason="ingest_disabled")
    if occ.event is None and (occ.project_id, occ.event_id) not in batch.events:
        return Rejected(
            Rejection.INVALID,
            "event_not_found",
            f"event {occ.event_id} was not stored for project {occ.project_id}",
            {"field": "event_id"},
        )
    return group(batch, occ, issue_type, hashes, project)


def group(
    batch: Batch,
    occ: ValidOccurrence,
    issue_type: IssueType,
    hashes: list[str],
    project: ProjectInfo,
) -> Accepted:
    """Join the issue of the first known hash, else open one (through the noise window)."""
    pid = occ.project_id
    primary, links, issue = _grouping(batch, pid, hashes)
    if issue is not None:
        if issue.type_id != occ.type_id:
            return accepted(occ, "dropped", reason="type_mismatch")
        outcome = join(
            issue,
            occ,
            occ.priority,
            now=batch.now,
            resolve_age_hours=project.resolve_age_hours,
            auto_resolve=issue_type.enable_auto_resolve,
        )
        batch.hourly[(issue, epoch_hour(occ.detection_time))] += 1
        if links:
            _link(batch, pid, issue, links)
        batch.queue(occ, issue, issue_type)
        return accepted(occ, outcome, issue)

    adopted: list[pending.Waiting] = []
    cfg = issue_type.noise_config
    # A threshold of 1 goes through the window too: lowered to 1 while a window is open, the
    # next occurrence opens the issue and the window's pending occurrences join it.
    if cfg is not None:
        waited = pending.admit_one(batch, occ, issue_type, cfg, primary)
        if isinstance(waited, Accepted):
            return waited
        adopted = waited
    elif batch.quota_used_up(occ, issue_type):
        return accepted(occ, "rate_limited", reason="creation_quota")

    issue = _open(batch, occ, issue_type, project, primary)
    if links:
        _link(batch, pid, issue, links)
    pending.adopt(batch, issue, adopted)
    batch.queue(occ, issue, issue_type)
    return accepted(occ, "created", issue)


def _grouping(batch: Batch, pid: int, hashes: list[str]) -> tuple[str, Sequence[str], Issue | None]:
    """The primary hash, the hashes to link, and the known issue joined (None: open one)."""
    if len(hashes) == 1:
        # One element (the common case): its issue, or a new one keyed by it; nothing to link
        # (and no decision object to build, once per occurrence).
        return hashes[0], (), batch.known.get((pid, hashes[0]))
    known = {h: batch.known[(pid, h)].ref for h in hashes if (pid, h) in batch.known}
    decision = decide(hashes, known)
    joined = batch.known[(pid, decision.primary_hash)] if decision.group_id is not None else None
    return decision.primary_hash, decision.link_hashes, joined


def _open(
    batch: Batch,
    occ: ValidOccurrence,
    issue_type: IssueType,
    project: ProjectInfo,
    primary: str,
) -> Issue:
    priority = priority_of(occ, issue_type)
    issue = open_issue(
        -1 - len(batch.created),
        occ.project_id,
        occ.type_id,
        primary,
        occ,
        priority,
        assignee=occ.assignee,
        notify=batch.flag(issue_type, POST_PROCESS, project),
    )
    batch.add_created(issue)
    batch.known[(occ.project_id, primary)] = issue
    batch.hourly[(issue, epoch_hour(occ.detection_time))] += 1
    return issue


def _link(batch: Batch, project_id: int, issue: Issue, hashes: Sequence[str]) -> None:
    """Link the free hashes of a fingerprint to the issue it went to.

    Only fingerprints with several elements get here. When a concurrent writer linked one of
    them first, the insert fails and the transaction is run again: the hash is then known,
    stays with that writer's issue, and groups this batch's later items as it should.
    """
    for h in hashes:
        batch.known[(project_id, h)] = issue
        batch.links.append((project_id, h, issue))
