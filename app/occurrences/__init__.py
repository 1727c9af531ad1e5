"""Occurrences: validation, grouping into issues, noise windows and the ingest use case."""
