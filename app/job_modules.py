"""Modules whose import registers periodic jobs (see ``app.jobs.runner``)."""

from app.notifications import delivery  # noqa: F401
