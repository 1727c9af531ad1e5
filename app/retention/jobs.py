"""The retention cleanup as a periodic job of ``serve`` and ``issue-platform jobs``."""

from __future__ import annotations

from typing import Any

from app.context import AppContext
from app.retention.service import run_pass


def retention_cleanup(ctx: AppContext) -> dict[str, Any]:
    """One cleanup pass; its summary (rows deleted per table)."""
    return run_pass(ctx).summary()
