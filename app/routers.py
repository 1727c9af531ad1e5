"""Every domain router, in the order they appear in the API docs."""

from __future__ import annotations

from fastapi import APIRouter

from app.organizations.router import router as organizations_router

ROUTERS: list[APIRouter] = [organizations_router]
