"""Health, readiness, metrics and the offline API docs."""
