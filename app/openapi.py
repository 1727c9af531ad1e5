"""The OpenAPI document, as served and as committed in ``openapi.json``."""

from __future__ import annotations

import json
from typing import Any

from app.config import Settings


def openapi_schema() -> dict[str, Any]:
    """The schema the application serves (built without touching a database)."""
    from app.main import create_app

    app = create_app(Settings(database_url="sqlite://", admin_token="unused"))  # noqa: S106
    return app.openapi()


def openapi_json() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(openapi_schema(), indent=2, sort_keys=False) + "\n"
