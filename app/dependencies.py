"""The FastAPI dependency of every route: the application's context (``ctx: CtxDep``).

It lives above ``app.context`` so the context itself imports no FastAPI; the principal
dependencies are in ``app.auth.dependencies``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.context import AppContext


async def get_context(request: Request) -> AppContext:
    """The application's context (FastAPI dependency)."""
    ctx: AppContext = request.app.state.ctx
    return ctx


# The one alias for route parameters that receive the context: ``ctx: CtxDep``.
CtxDep = Annotated[AppContext, Depends(get_context)]
