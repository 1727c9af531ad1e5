"""The HTTP ceiling: read the occurrence body, parse it with orjson, answer 202.

Served by uvicorn with the settings ``issue-platform serve`` uses (one worker, no access log).
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request

from app.responses import JSONResponse

app = FastAPI(default_response_class=JSONResponse)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.post("/occurrences", status_code=202)
async def post_occurrence(request: Request) -> JSONResponse:
    """Parse the body and answer like the service does, without validating or storing."""
    occurrence = orjson.loads(await request.body())
    body: dict[str, Any] = {
        "occurrence_id": occurrence["id"],
        "project_id": occurrence["project_id"],
        "outcome": "created",
        "reason": None,
        "issue_id": 1,
        "noise": None,
        "ignored_fields": [],
    }
    return JSONResponse(body, status_code=202)


def main() -> None:
    """Serve the ceiling app on 127.0.0.1."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        log_level="info",
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
