"""Modules whose import registers periodic jobs (see ``app.jobs.runner``)."""
