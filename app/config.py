"""Settings: one typed class, read from ``ISSUE_PLATFORM_*`` environment variables and ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the service; see docs/configuration.md for the table."""

    model_config = SettingsConfigDict(env_prefix="ISSUE_PLATFORM_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Holds the SQLite file and admin token.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file in the data dir."
    )
    admin_token: str | None = Field(None, description="Admin bearer token; generated if unset.")
    metrics_token: str | None = Field(None, description="Bearer token for /metrics; unset = open.")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Body limit for most routes.")
    max_batch_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Body limit for /occurrences/batch and /ingest."
    )
    ingest_group_max_items: int = Field(
        1000, ge=1, description="Most occurrences the ingest writer puts in one transaction."
    )
    max_batch_items: int = Field(1000, ge=1, description="Most items in one batch request.")
    max_fingerprint_elements: int = Field(100, ge=1, description="Most fingerprint elements.")
    max_fingerprint_length: int = Field(2048, ge=1, description="Longest fingerprint element.")
    max_title_length: int = Field(
        8192, ge=1, description="Longest issue_title, subtitle, culprit or resource_id."
    )
    max_nesting_depth: int = Field(
        32, ge=1, description="Deepest nesting of evidence_data and event objects."
    )
    db_pool_size: int = Field(10, ge=1, description="Connection pool size (PostgreSQL).")
    db_max_overflow: int = Field(20, ge=0, description="Extra connections beyond the pool.")
    sqlite_busy_timeout_ms: int = Field(
        30_000, ge=0, description="How long SQLite waits for the write lock."
    )
    sqlite_checkpoint_seconds: float = Field(
        1.0, ge=0, description="How often the WAL is checkpointed in the background (0 = never)."
    )
    jobs_interval_seconds: float = Field(
        60.0, gt=0, description="How often `serve` runs the periodic jobs (0 < value)."
    )
    run_jobs: bool = Field(True, description="Run periodic jobs inside `serve`.")
    webhook_timeout_seconds: float = Field(5.0, gt=0, description="Webhook HTTP timeout.")
    webhook_poll_seconds: float = Field(
        1.0, gt=0, description="How often `serve` looks for webhook deliveries that are due."
    )
    webhook_allow_private_networks: bool = Field(
        False,
        description="Allow webhook URLs on localhost or literal private/loopback/link-local IPs.",
    )
    auth_cache_seconds: float = Field(
        2.0, ge=0, description="How long a process caches an API key lookup."
    )
    registry_refresh_seconds: float = Field(
        2.0, ge=0, description="How often a process reloads API-registered types and flags."
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force (explicit, or the SQLite file in the data dir)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'issue_platform.db').resolve()}"

    @property
    def admin_token_path(self) -> Path:
        """Where a generated admin token is stored."""
        return self.data_dir / "admin-token"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached)."""
    return Settings()
