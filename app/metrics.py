"""Prometheus metrics of the service (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
REQUESTS = Counter(
    "issue_platform_requests_total",
    "HTTP answers by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "issue_platform_ingest_rate_limited_total",
    "Items refused with 429 by the per-project ingest rate limit.",
    registry=REGISTRY,
)
WRITER_FAILURES = Counter(
    "issue_platform_ingest_writer_failures_total",
    "Group-commit transactions that failed, by reason (unavailable or error).",
    ["reason"],
    registry=REGISTRY,
)
DATABASE_UP = Gauge(
    "issue_platform_database_up",
    "1 when the database answered the last /metrics scrape's query, else 0.",
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "issue_platform_webhook_outbox_pending",
    "Webhook deliveries not yet delivered or given up (read at scrape time).",
    registry=REGISTRY,
)
OUTBOX_DUE = Gauge(
    "issue_platform_webhook_outbox_due",
    "Pending webhook deliveries whose next attempt is due now (read at scrape time).",
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
CONSUMER_LAG = Gauge(
    "issue_platform_consumer_lag",
    "Messages between the consumer's position and the partition's high watermark.",
    ["topic", "partition"],
    registry=REGISTRY,
)
RETENTION_DELETED = Counter(
    "issue_platform_retention_deleted_rows_total",
    "Rows the retention cleanup deleted, by table.",
    ["table"],
    registry=REGISTRY,
)
RETENTION_BATCH_SECONDS = Histogram(
    "issue_platform_retention_batch_seconds",
    "How long each transaction of a retention pass held the database, by step.",
    ["step"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
RETENTION_PASS_SECONDS = Histogram(
    "issue_platform_retention_pass_seconds",
    "Duration of retention cleanup passes (those that ran, not those skipped).",
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0),
    registry=REGISTRY,
)
