"""Use case: a detector changes an issue's status (`POST /status-changes`, `/ingest`, Kafka)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.context import AppContext
from app.errors import DomainError, Forbidden, InvalidPayload, NotFound, validation_details
from app.issues.serialize import activity_out, issue_payload
from app.issues.write import lock_by_fingerprint
from app.lifecycle import service as lifecycle
from app.models import StatusChangeRecord
from app.notifications import outbox
from app.organizations.access import project_for
from app.status_changes.schemas import StatusChangeIn


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
            outbox.render_queued(session)
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
    now: datetime,
) -> dict[str, Any]:
    """Authorise, find the issue, plan with the transition rules, apply, answer (in this order)."""
    project = project_for(session, principal, payload.project_id)
    element = payload.fingerprint[0]
    group = lock_by_fingerprint(session, project_id=project.id, element=element)
    if group is None:
        raise NotFound(
            f"no issue with fingerprint {element!r} in project {project.id}",
            code="issue_not_found",
        )
    if payload.id is not None:
        stored = _stored_answer(session, project.id, payload.id)
        if stored is not None:
            return stored
    transition = lifecycle.plan(group, lifecycle.parse(payload.new_status, payload.new_substatus))
    if transition is None:
        return {
            "issue": issue_payload(session, group, ctx.registry),
            "changed": False,
            "activity": None,
        }
    actor = f"detector:{payload.detector_id}"[:100] if payload.detector_id is not None else None
    activity = lifecycle.apply_transition(
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
