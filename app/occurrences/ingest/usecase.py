"""The ingest use case: the occurrences of one group commit, decided and written in one transaction.

Batch-first (ADR 0003, 0009): a single ``POST /occurrences`` is a batch of one; the batch route,
``/ingest``, the Kafka consumer and the group-commit writer hand over many. The pipeline:

1. validate each payload (pure, validation.py);
2. read once for the whole group: projects, stored ids, known hashes and their issues (batch.py);
3. decide each occurrence once, in order, with the pure rules (decide.py, rules.py);
4. write with a few set-based statements (write.py) and commit before anyone is answered.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from app.auth.principal import Principal
from app.context import AppContext
from app.issue_types.registry import IssueType
from app.issue_types.service import refresh_if_stale, registry_stale
from app.issues.fingerprint import fingerprint_hashes
from app.metrics import OCCURRENCES
from app.notifications.outbox import render_queued
from app.occurrences.ingest import batch as reads
from app.occurrences.ingest import driver, journal
from app.occurrences.ingest import statements as st
from app.occurrences.ingest.decide import decide_one
from app.occurrences.ingest.outcomes import (
    IngestResult,
    Outcome,
    Rejected,
    Rejection,
    to_result,
)
from app.occurrences.ingest.retry import retrying
from app.occurrences.ingest.write import write
from app.occurrences.validation import Limits, PayloadError, ValidOccurrence, validate_occurrence

log = logging.getLogger(__name__)

LOCK_BUCKETS = 1 << 16

Candidate = tuple[int, ValidOccurrence, IssueType, list[str]]


def lock_key(project_id: int, value: str) -> int:
    """The advisory lock bucket of a fingerprint's primary hash (PostgreSQL)."""
    digest = hashlib.blake2b(f"{project_id}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % LOCK_BUCKETS


def limits_of(ctx: AppContext) -> Limits:
    """The payload limits in force."""
    s = ctx.settings
    return Limits(
        max_fingerprint_elements=s.max_fingerprint_elements,
        max_fingerprint_length=s.max_fingerprint_length,
        max_title_length=s.max_title_length,
        max_depth=s.max_nesting_depth,
    )


def ingest(
    ctx: AppContext, requests: Sequence[tuple[Sequence[Any], Principal]]
) -> list[list[Outcome]]:
    """Ingest the items of several requests in one transaction (group commit).

    Each request keeps its own caller, so tenancy is checked per item; the outcomes come back
    per request, in order, once the transaction is committed. The caller folds the counter
    journal when due (``journal.fold_if_due``), after answering if it can.
    """
    limits = limits_of(ctx)
    flat: list[tuple[Any, Principal]] = [(raw, p) for raws, p in requests for raw in raws]
    outcomes: list[Outcome | None] = [None] * len(flat)
    valid: list[tuple[int, ValidOccurrence, Principal]] = []
    for i, (raw, principal) in enumerate(flat):
        try:
            valid.append((i, validate_occurrence(raw, limits), principal))
        except PayloadError as exc:
            outcomes[i] = Rejected(Rejection.INVALID, exc.code, exc.message, exc.details())
    if valid:
        journal.fold_if_stale(ctx)
        for i, outcome in retrying(lambda: _transaction(ctx, valid)).items():
            outcomes[i] = outcome
    out = [o for o in outcomes if o is not None]
    assert len(out) == len(flat)
    _count(flat, out)
    answers: list[list[Outcome]] = []
    position = 0
    for raws, _ in requests:
        answers.append(out[position : position + len(raws)])
        position += len(raws)
    return answers


def ingest_requests(
    ctx: AppContext, requests: Sequence[tuple[Sequence[Any], Principal]]
) -> list[list[IngestResult]]:
    """``ingest`` with every outcome in its HTTP form (the routes' and the writer's answer)."""
    return [[to_result(o) for o in answer] for answer in ingest(ctx, requests)]


def ingest_occurrences(
    ctx: AppContext, raws: Sequence[Any], *, principal: Principal
) -> list[IngestResult]:
    """Validate and ingest many occurrences of one caller; one HTTP-form result per item.

    Then folds the counter journal when due (the topic-shaped route and the Kafka consumer).
    """
    results = ingest_requests(ctx, [(list(raws), principal)])[0]
    journal.fold_if_due(ctx)
    return results


def _count(flat: list[tuple[Any, Principal]], out: list[Outcome]) -> None:
    """The outcome counters, incremented once per (outcome, type) per transaction."""
    # Accepted items carry a registered type (their payload is a validated dict), so the label
    # set stays bounded; the labels are formatted once per distinct pair, not per item.
    tally = Counter(
        ("rejected", "-") if isinstance(o, Rejected) else (o.outcome, raw.get("type"))
        for (raw, _), o in zip(flat, out, strict=True)
    )
    for (outcome, type_label), n in tally.items():
        OCCURRENCES.labels(outcome=outcome, type=str(type_label)).inc(n)


def _checked(
    ctx: AppContext,
    projects: dict[int, st.ProjectInfo],
    valid: list[tuple[int, ValidOccurrence, Principal]],
    outcomes: dict[int, Outcome],
) -> list[Candidate]:
    """Checks that need the database but change nothing: project, access, issue type."""
    candidates: list[Candidate] = []
    registered = ctx.registry.get
    for i, occ, principal in valid:
        project = projects.get(occ.project_id)
        if project is None:
            message = f"project {occ.project_id} not found"
            outcomes[i] = Rejected(Rejection.NOT_FOUND, "project_not_found", message)
            continue
        if not principal.may_access(project.organization_id, project.id):
            message = f"this key may not use project {occ.project_id}"
            outcomes[i] = Rejected(Rejection.FORBIDDEN, "forbidden", message)
            continue
        issue_type = registered(occ.type_id)
        if issue_type is None:
            outcomes[i] = Rejected(
                Rejection.INVALID,
                "unknown_issue_type",
                f"issue type {occ.type_id} is not registered",
                {"field": "type"},
            )
            continue
        candidates.append((i, occ, issue_type, fingerprint_hashes(occ.fingerprint)))
    return candidates


def _transaction(
    ctx: AppContext, valid: list[tuple[int, ValidOccurrence, Principal]]
) -> dict[int, Outcome]:
    """One transaction: everything a group commit changes, committed before answering."""
    outcomes: dict[int, Outcome] = {}
    with ctx.db.write_connection() as conn:
        txn = reads.Txn(conn)
        try:
            _decide_and_write(ctx, txn, valid, outcomes)
        finally:
            txn.close()
    return outcomes


def _decide_and_write(
    ctx: AppContext,
    txn: reads.Txn,
    valid: list[tuple[int, ValidOccurrence, Principal]],
    outcomes: dict[int, Outcome],
) -> None:
    """The transaction's work, committed at the end unless no occurrence can be stored."""
    conn = txn.conn
    now = ctx.now()
    if registry_stale(ctx):
        refresh_if_stale(ctx, txn.session)
    sql = st.statements(conn.dialect.name)
    cur = driver.cursor(conn)
    project_ids = sorted({v.project_id for _, v, _ in valid})
    projects = {p.id: p for p in st.projects(cur, sql, project_ids)}
    candidates = _checked(ctx, projects, valid, outcomes)
    if not candidates:
        return  # rolled back as the connection closes
    if sql.postgres:
        # Serialize writers touching the same fingerprint; taken in one sorted statement so
        # two transactions never wait on each other in a cycle. Only the primary hash: a
        # retry of the same payload shares it, and any other race (same id, other
        # fingerprint) ends in a unique-key error that ``retrying`` replays.
        keys = sorted({lock_key(occ.project_id, h[0]) for _, occ, _, h in candidates})
        conn.execute(
            text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
            {"keys": keys},
        )
    batch = reads.Batch(txn, ctx, now, sql, cur, projects, st.Times(sql))
    _read(batch, candidates)
    for i, occ, issue_type, hashes in candidates:
        outcomes[i] = decide_one(batch, occ, issue_type, hashes, projects[occ.project_id])
    write(batch)
    if txn.session_opened:
        render_queued(txn.session)
        txn.session.flush()
    conn.commit()
    if batch.journaled:
        journal.committed_journal(ctx)
    if batch.rows:  # stored occurrences: the database can write (/readyz)
        ctx.db.write_health.succeeded()


def _read(batch: reads.Batch, candidates: list[Candidate]) -> None:
    """Everything the decisions read, once for the whole group."""
    reads.load_existing(batch, [occ for _, occ, _, _ in candidates])
    hashes: dict[int, set[str]] = defaultdict(set)
    for _, occ, _, occ_hashes in candidates:
        hashes[occ.project_id].update(occ_hashes)
    reads.load_known(batch, hashes)
    reads.load_events(batch, [occ for _, occ, _, _ in candidates if occ.event is None])
