"""Running a transaction again when a concurrent writer made it lose a race."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 5


def retrying(fn: Callable[[], T], what: str = "ingest") -> T:
    """Run a write transaction again when a concurrent writer made it lose a race.

    A unique-key race (two processes creating the same issue, the same occurrence id at the same
    instant) or a PostgreSQL deadlock or serialization failure (an ingest, a counter fold and a
    triage touching the same issues) aborts the transaction; the retry sees the winner's rows.
    ``what`` names the transaction in the log.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return fn()
        except IntegrityError:
            if attempt == MAX_ATTEMPTS:
                raise
            log.info("%s race lost (attempt %d), retrying", what, attempt)
        except OperationalError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in ("40P01", "40001") or attempt == MAX_ATTEMPTS:
                raise
            log.info("%s deadlock (attempt %d), retrying", what, attempt)
    raise AssertionError("unreachable")
