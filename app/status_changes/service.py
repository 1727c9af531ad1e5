"""Use case: a detector changes an issue's status (`POST /status-changes`, `/ingest`, Kafka)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.context import AppContext
from app.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidPayload,
    NotFound,
    validation_details,
)
from app.issues.fingerprint import hash_element
from app.issues.serialize import issue_payload
from app.lifecycle.service import apply_transition, lock_group, state_of
from app.lifecycle.transitions import TransitionRejected, parse_target, plan_transition
from app.models import Activity, GroupHash, StatusChangeRecord
from app.organizations.access import project_for
from app.status_changes.schemas import StatusChangeIn
from app.triage.schemas import ActivityOut


def activity_out(row: Activity) -> ActivityOut:
    """An activity row as the API shows it."""
    return ActivityOut(
        id=row.id,
        issue_id=row.group_id,
        type=row.type,
        data=row.data or {},
        actor=row.actor,
        created_at=row.created_at,
    )


def rejected(exc: TransitionRejected) -> DomainError:
    """The HTTP error of a rejected transition."""
    if exc.conflict:
        return Conflict(exc.message, code=exc.code)
    return InvalidPayload(exc.message, code=exc.code)


def _stored_answer(session: Session, project_id: int, change_id: str) -> dict[str, Any] | None:
    row = session.get(StatusChangeRecord, (project_id, change_id))
    return None if row is None else dict(row.response)


def answer_for(principal: Principal, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer as the caller may see it: without the `read` scope, the change only.

    An ingest-only key may move an issue but not read it, so it gets the issue's id, status and
    substatus and the activity's id and type, never the title, culprit or evidence.
    """
    if principal.has_scope("read"):
        return answer
    issue, activity = answer["issue"], answer["activity"]
    return {
        "issue": {"id": issue["id"], "status": issue["status"], "substatus": issue["substatus"]},
        "changed": answer["changed"],
        "activity": None if activity is None else {"id": activity["id"], "type": activity["type"]},
    }


def change_status(
    *, ctx: AppContext, principal: Principal, payload: StatusChangeIn
) -> dict[str, Any]:
    """Apply one status change and return the answer body the caller may see (``answer_for``)."""
    now = ctx.now()
    try:
        with ctx.db.write() as session:
            answer = _change_status(session, ctx, principal, payload, now=now)
            session.commit()
            return answer_for(principal, answer)
    except IntegrityError:
        # The same id was recorded by a concurrent request: answer as it was answered.
        if payload.id is None:
            raise
        with ctx.db.read() as session:
            stored = _stored_answer(session, payload.project_id, payload.id)
        if stored is None:
            raise
        return answer_for(principal, stored)


def _change_status(
    session: Session,
    ctx: AppContext,
    principal: Principal,
    payload: StatusChangeIn,
    *,
    now: Any,
) -> dict[str, Any]:
    project = project_for(session, principal, payload.project_id)
    group_id = session.scalar(
        select(GroupHash.group_id).where(
            GroupHash.project_id == project.id,
            GroupHash.hash == hash_element(payload.fingerprint[0]),
        )
    )
    group = lock_group(session, group_id) if group_id is not None else None
    if group is None:
        raise NotFound(
            f"no issue with fingerprint {payload.fingerprint[0]!r} in project {project.id}",
            code="issue_not_found",
        )
    if payload.id is not None:
        stored = _stored_answer(session, project.id, payload.id)
        if stored is not None:
            return stored
    try:
        target = parse_target(payload.new_status, payload.new_substatus)
        transition = plan_transition(state_of(group), target)
    except TransitionRejected as exc:
        raise rejected(exc) from None
    if transition is None:
        return {
            "issue": issue_payload(session, group, ctx.registry),
            "changed": False,
            "activity": None,
        }
    actor = f"detector:{payload.detector_id}"[:100] if payload.detector_id is not None else None
    activity = apply_transition(
        session,
        ctx,
        group,
        transition,
        now=now,
        actor=actor or principal.actor,
        data=payload.activity_data,
    )
    answer = {
        "issue": issue_payload(session, group, ctx.registry),
        "changed": True,
        "activity": activity_out(activity).model_dump(mode="json"),
    }
    if payload.id is not None:
        session.add(
            StatusChangeRecord(
                project_id=project.id, id=payload.id, response=answer, created_at=now
            )
        )
        session.flush()
    return answer


def apply_status_change(
    ctx: AppContext, principal: Principal, payload_dict: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """A raw status-change message (``/ingest``, Kafka) → (HTTP status, answer or error body)."""
    if not principal.has_scope("ingest"):
        return 403, Forbidden("scope 'ingest' required").body()
    try:
        payload = StatusChangeIn.model_validate(payload_dict)
    except ValidationError as exc:
        details = validation_details(list(exc.errors()))
        first = details[0]["field"] if details else ""
        return 422, InvalidPayload(f"invalid payload at '{first}'", details=details).body()
    try:
        return 200, change_status(ctx=ctx, principal=principal, payload=payload)
    except DomainError as exc:
        return exc.status_code, exc.body()
