"""Settings: one typed class, read from ``ISSUE_PLATFORM_*`` environment variables and ``.env``."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "ISSUE_PLATFORM_"
# Settings whose values never appear in an error message (a URL or the Kafka settings may
# carry a password).
_SECRET_MARKERS = ("token", "url", "secret", "password", "kafka_config")


class Settings(BaseSettings):
    """Every setting of the service; see docs/configuration.md for the table."""

    # Errors never echo values (several settings hold secrets); settings_problems names them.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", hide_input_in_errors=True
    )

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
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="How long a request body may take to arrive before 408."
    )
    max_connections: int = Field(
        1000, ge=1, description="Open connections a `serve` process accepts; more answer 503."
    )
    ingest_group_max_items: int = Field(
        1000, ge=1, description="Most occurrences the ingest writer puts in one transaction."
    )
    ingest_writer: Literal["inline", "thread"] = Field(
        "inline",
        description="Where the ingest writer runs: in the event loop (inline) or in a thread.",
    )
    counter_fold_seconds: float = Field(
        2.0,
        ge=0,
        description=(
            "How often ingest folds the counter journal into issues' counts (seconds); reads "
            "fold whatever is pending first, so answers are exact whatever the interval."
        ),
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
    db_connect_timeout_seconds: int = Field(
        5, ge=1, description="How long opening a PostgreSQL connection may take before 503."
    )
    sqlite_busy_timeout_ms: int = Field(
        30_000, ge=0, description="How long SQLite waits for the write lock."
    )
    sqlite_cache_mb: int = Field(
        8,
        ge=1,
        description=(
            "Page cache of each SQLite connection, in MiB. An ingest transaction of a few hundred "
            "occurrences dirties a few MiB of pages: below that, SQLite writes pages out to the "
            "WAL in the middle of the transaction and reads them back."
        ),
    )
    sqlite_checkpoint_seconds: float = Field(
        1.0, ge=0, description="How often the WAL is checkpointed in the background (0 = never)."
    )
    jobs_interval_seconds: float = Field(
        60.0, gt=0, description="How often `serve` runs the periodic jobs (0 < value)."
    )
    run_jobs: bool = Field(True, description="Run periodic jobs inside `serve`.")
    default_retention_days: int = Field(
        90, ge=1, le=3650, description="`retention_days` of a project created without one."
    )
    retention_interval_seconds: float = Field(
        3600.0, gt=0, description="How often `serve` runs the retention cleanup pass (0 < value)."
    )
    retention_batch_size: int = Field(
        2000, ge=10, le=100_000, description="Most rows one cleanup transaction deletes."
    )
    retention_batch_seconds: float = Field(
        0.025,
        gt=0,
        description="Longest a cleanup transaction should hold the database; larger ones shrink.",
    )
    retention_pause_seconds: float = Field(
        0.025, ge=0, description="Pause between two cleanup transactions, left to ingest."
    )
    sqlite_vacuum_pages: int = Field(
        2000,
        ge=0,
        description="Free pages given back to the disk per step after a pass (SQLite; 0 = off).",
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, description="Webhook HTTP timeout.")
    webhook_poll_seconds: float = Field(
        1.0, gt=0, description="How often `serve` looks for webhook deliveries that are due."
    )
    webhook_allow_private_networks: bool = Field(
        False,
        description="Allow webhook receivers on any address, private and special-purpose ones too.",
    )
    webhook_allowed_networks: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode
    ] = Field(
        (),
        description="Comma-separated CIDR ranges webhook receivers may use although not public.",
    )
    auth_cache_seconds: float = Field(
        2.0, ge=0, description="How long a process caches an API key lookup."
    )
    auth_failures_per_minute: float = Field(
        30.0, ge=0, description="Wrong tokens a client address may send per minute; 0 = no limit."
    )
    auth_failures_burst: float = Field(
        20.0, ge=1, description="Wrong tokens a client address may send at once before 429."
    )
    registry_refresh_seconds: float = Field(
        2.0, ge=0, description="How often a process reloads API-registered types and flags."
    )
    ingest_rate_limit_per_second: float = Field(
        0.0, ge=0, description="Occurrences per second and project a process accepts; 0 = off."
    )
    ingest_rate_limit_burst: float = Field(
        0.0, ge=0, description="Token-bucket size of the ingest rate limit; 0 = one second's worth."
    )
    kafka_config: dict[str, str] = Field(
        default_factory=dict,
        repr=False,  # may hold sasl.password
        description="librdkafka settings (a JSON object) for `consume` and the Kafka producer.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as plain text or as one JSON object per line."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged by `serve`, `jobs` and `consume`."
    )
    access_log: bool = Field(
        False, description="Log one line per HTTP request (method, route, status, duration)."
    )
    console_secret: str | None = Field(
        None,
        min_length=32,
        description="Key signing the web console's session cookies; generated if unset.",
    )
    console_session_minutes: int = Field(
        720, ge=5, le=43_200, description="How long a web console login lasts, in minutes."
    )

    @field_validator("kafka_config", mode="before")
    @classmethod
    def _kafka_values(cls, value: object) -> object:
        """Scalars as librdkafka spells them (``true``, ``5``); objects and arrays are refused."""
        if not isinstance(value, dict):
            return value
        options: dict[object, object] = {}
        for name, option in value.items():
            if isinstance(option, bool):
                option = "true" if option else "false"
            elif isinstance(option, int | float):
                option = str(option)
            elif not isinstance(option, str):
                raise ValueError(f"kafka_config: {name!r} must be a string, number or boolean")
            options[name] = option
        return options

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(
                ipaddress.ip_network(part.strip()) for part in value.split(",") if part.strip()
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

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

    @property
    def console_secret_path(self) -> Path:
        """Where a generated console signing key is stored."""
        return self.data_dir / "console-secret"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached)."""
    return Settings()


class _LogLevelOnly(BaseSettings):
    """The log level alone, readable when other settings are invalid."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    log_level: str = "INFO"


def debug_requested() -> bool:
    """Whether ``ISSUE_PLATFORM_LOG_LEVEL`` asks for DEBUG (even if other settings are invalid)."""
    return _LogLevelOnly().log_level.strip().upper() == "DEBUG"


def settings_problems(exc: ValidationError) -> list[str]:
    """One line per invalid setting: its environment variable, what is wrong and the value."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        line = f"invalid setting {ENV_PREFIX}{field.upper()}: {error['msg']}"
        if not any(marker in field for marker in _SECRET_MARKERS):
            value = repr(error.get("input"))
            line += f" (got {value[:60]})"
        lines.append(line)
    return lines
