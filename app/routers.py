"""Every domain router, in the order they appear in the API docs."""

from __future__ import annotations

from fastapi import APIRouter

from app.issues.router import router as issues_router
from app.notifications.router import router as notifications_router
from app.occurrences.router import router as occurrences_router

ROUTERS: list[APIRouter] = [
    occurrences_router,
    issues_router,
    notifications_router,
]
