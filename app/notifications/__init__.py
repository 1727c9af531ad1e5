"""Webhooks: outbox written with each change, delivered at least once by a worker."""
