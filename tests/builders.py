"""Builders for test data, with overrides."""

from __future__ import annotations

import uuid
from typing import Any


def occurrence(**overrides: Any) -> dict[str, Any]:
    """A valid occurrence payload for project 1 and the built-in error type."""
    event_id = overrides.pop("event_id", None) or uuid.uuid4().hex
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "project_id": 1,
        "fingerprint": ["fp-1"],
        "issue_title": "Slow thing",
        "subtitle": "in handler",
        "culprit": "app.views.index",
        "resource_id": None,
        "evidence_data": {"duration_ms": 1234},
        "evidence_display": [
            {"name": "Duration", "value": "1234 ms", "important": True},
            {"name": "Where", "value": "index", "important": False},
        ],
        "type": 1,
        "detection_time": "2026-11-02T11:00:00Z",
        "level": "warning",
        "event": {
            "event_id": event_id,
            "project_id": overrides.get("project_id", 1),
            "platform": "python",
            "timestamp": 1793617200.0,
            "tags": {"env": "prod"},
        },
    }
    body.update(overrides)
    return body


def make_key(
    ctx: Any,
    *,
    organization_id: int = 1,
    scopes: tuple[str, ...] = ("ingest", "read", "triage"),
    project_ids: list[int] | None = None,
) -> str:
    """Store an API key directly and return its token."""
    from app.auth.principal import hash_token, new_token
    from app.models import ApiKey

    token = new_token()
    with ctx.db.write() as session:
        session.add(
            ApiKey(
                organization_id=organization_id,
                name="test",
                token_hash=hash_token(token),
                scopes=list(scopes),
                project_ids=project_ids,
            )
        )
        session.commit()
    return token


def make_org_with_project(
    ctx: Any, org_id: int, project_id: int, *, early_adopter: bool = False
) -> None:
    """Store another organization with one project."""
    from app.models import Organization, Project

    with ctx.db.write() as session:
        session.add(
            Organization(
                id=org_id, slug=f"org{org_id}", name=f"Org {org_id}", early_adopter=early_adopter
            )
        )
        session.flush()
        session.add(
            Project(
                id=project_id, organization_id=org_id, slug=f"p{project_id}", name=f"P {project_id}"
            )
        )
        session.commit()


def set_flag(
    ctx: Any, type_id: int, kind: str, stage: str, organizations: list[int] | None = None
) -> None:
    """Store a rollout flag row."""
    from app.models import RolloutFlag

    with ctx.db.write() as session:
        row = session.get(RolloutFlag, (type_id, kind))
        if row is None:
            row = RolloutFlag(type_id=type_id, kind=kind)
            session.add(row)
        row.stage = stage
        row.organizations = organizations or []
        session.commit()
    cache = ctx.extras.get("flag_cache")
    if cache is not None:
        cache.invalidate()
