"""Every domain router, in the order they appear in the API docs."""

from __future__ import annotations

from fastapi import APIRouter

from app.notifications.router import router as notifications_router

ROUTERS: list[APIRouter] = [notifications_router]
