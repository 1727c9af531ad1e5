"""The issue aggregate: statuses, fingerprint hash, row writes and activity, answers, the stream.

Imports no other domain package that works on issues (lifecycle, occurrences, status changes,
triage): they build on it (docs/architecture.md).
"""
