"""Prometheus metrics of the service (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

OCCURRENCES = Counter(
    "issue_platform_occurrences_total",
    "Occurrences processed, by outcome and issue type.",
    ["outcome", "type"],
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "issue_platform_request_seconds",
    "HTTP request latency by route template and method.",
    ["route", "method"],
    registry=REGISTRY,
)
INGEST_BATCH_SIZE = Histogram(
    "issue_platform_ingest_batch_size",
    "Occurrences per ingest transaction.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "issue_platform_webhook_deliveries_total",
    "Webhook delivery attempts, by result.",
    ["result"],
    registry=REGISTRY,
)
CONSUMER_MESSAGES = Counter(
    "issue_platform_consumer_messages_total",
    "Messages the Kafka consumer handled, by result (processed or dlq).",
    ["result"],
    registry=REGISTRY,
)
CONSUMER_RETRIES = Counter(
    "issue_platform_consumer_batch_retries_total",
    "Batches the Kafka consumer had to retry (database or dead-letter topic unavailable).",
    registry=REGISTRY,
)
CONSUMER_COMMIT_FAILURES = Counter(
    "issue_platform_consumer_commit_failures_total",
    "Offset commits that failed (the batch will be delivered again).",
    registry=REGISTRY,
)
