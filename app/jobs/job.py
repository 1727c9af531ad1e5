"""What a periodic job is: a name, one pass over the context, and the wait between passes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.context import AppContext


@dataclass(frozen=True)
class Job:
    """A periodic job: ``run(ctx)`` returns a small summary; ``interval(ctx)`` in seconds."""

    name: str
    run: Callable[[AppContext], dict[str, Any]]
    interval: Callable[[AppContext], float]
