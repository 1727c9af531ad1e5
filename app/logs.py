"""Logging: text or JSON lines on stderr, each record tagged with the request id it belongs to.

The request id lives in a context variable set by ``RequestContextMiddleware``; handlers run
in the same context (thread-pool calls copy it), so every record of a request carries it.
Nothing here logs headers or bodies: tokens, keys and webhook secrets never reach a log line.
"""

from __future__ import annotations

import itertools
import logging
import logging.config
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from app.config import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def request_id_from(header: str | None) -> str:
    """The client's request id when it is valid (≤ 128 of ``[A-Za-z0-9._-]``), else a new one."""
    if header is not None and _VALID_REQUEST_ID.fullmatch(header):
        return header
    # Unique, not secret: a per-process random prefix and a counter (uuid4 costs a syscall).
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


_ID_PREFIX = os.urandom(10).hex()
_ID_COUNTER = itertools.count(1)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """Plain lines with the request id (``-`` outside a request) and ``key=value`` extras."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt or TEXT_FORMAT, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = REQUEST_ID.get() or "-"
        line = super().format(record)
        extras = _fields(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            data["request_id"] = request_id
        data.update(_fields(record))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        return orjson.dumps(data, default=str).decode()


def log_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service, uvicorn's loggers included."""
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    level = settings.log_level
    uvicorn_loggers = ("uvicorn", "uvicorn.error", "uvicorn.access")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            **{
                name: {"handlers": [], "level": level, "propagate": True}
                for name in uvicorn_loggers
            },
            # Alembic announces each of its plugins at INFO when it loads the scripts.
            "alembic.runtime.plugins": {"level": "DEBUG" if level == "DEBUG" else "WARNING"},
            # httpx logs every request's full URL at INFO; webhook URLs carry secrets in paths.
            "httpx": {"level": "ERROR" if level == "ERROR" else "WARNING"},
        },
        "root": {"handlers": ["default"], "level": level},
    }


def configure_logging(settings: Settings) -> None:
    """Apply :func:`log_config` to this process, unless logging is set up already.

    Like ``logging.basicConfig``, it leaves a process alone whose root logger has handlers
    (an embedding application, or a test runner capturing logs).
    """
    if logging.getLogger().handlers:
        return
    logging.config.dictConfig(log_config(settings))
