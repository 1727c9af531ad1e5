"""Modules whose import registers periodic jobs (see ``app.jobs.runner``)."""

from app.lifecycle import jobs as lifecycle_jobs  # noqa: F401
from app.notifications import delivery  # noqa: F401
from app.retention import jobs as retention_jobs  # noqa: F401
