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
