"""Kafka consumer of the ``ingest-occurrences`` topic (SPEC §9)."""
