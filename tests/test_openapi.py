"""The committed openapi.json equals what the application serves."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent


def test_committed_openapi_matches_served_schema(client: TestClient) -> None:
    committed = json.loads((ROOT / "openapi.json").read_text())
    served = client.get("/openapi.json").json()
    assert served == committed, "openapi.json is stale: run `make openapi`"
