"""Every domain router, in the order they appear in the API docs."""

from __future__ import annotations

from fastapi import APIRouter

from app.issue_types.router import router as issue_types_router
from app.issues.router import router as issues_router
from app.notifications.router import router as notifications_router
from app.occurrences.router import issue_router as issue_occurrences_router
from app.occurrences.router import router as occurrences_router
from app.organizations.router import router as organizations_router
from app.rollout.router import router as rollout_router
from app.status_changes.router import router as status_changes_router
from app.triage.router import router as triage_router

ROUTERS: list[APIRouter] = [
    occurrences_router,
    status_changes_router,
    issues_router,
    issue_occurrences_router,
    triage_router,
    organizations_router,
    issue_types_router,
    rollout_router,
    notifications_router,
]
