"""Rollout flags of unreleased issue types: ingest, post-process and visibility."""
