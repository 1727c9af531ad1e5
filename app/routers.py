"""Every domain router, in the order they appear in the API docs."""

from __future__ import annotations

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
