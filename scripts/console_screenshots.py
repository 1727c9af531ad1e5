"""Take the console screenshots of docs/img/ with headless Chromium and realistic data.

    .venv/bin/python scripts/console_screenshots.py

Serves a fresh SQLite database (in a temporary folder) with uvicorn, sends a week of occurrences
of several detectors through the API, archives one issue until it escalates (so its page shows the
forecast), logs in with the admin token and saves docs/img/console-stream.png and
docs/img/console-issue.png at 1280 px wide. Needs the Debian packages chromium and chromium-driver.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrations import upgrade  # noqa: E402

TOKEN = "screenshot-admin-token-" + uuid.uuid4().hex
NOW = datetime.now(UTC).replace(microsecond=0)

# (fingerprint, type, title, subtitle, culprit, level, evidence, data, per-day weights)
ISSUES: list[tuple[Any, ...]] = [
    (
        "n+1-orders",
        1006,
        "N+1 Query",
        "SELECT * FROM order_items WHERE order_id = %s",
        "/api/orders/{id}",
        "warning",
        [
            ("Offending Spans", "db - SELECT * FROM order_items WHERE order_id = %s", True),
            ("Parent Span", "http.server - GET /api/orders/{id}", False),
            ("Repeating Spans (38)", "db - SELECT * FROM order_items WHERE order_id = %s", False),
        ],
        {"num_repeating_spans": 38, "parent_span": "GET /api/orders/{id}", "op": "db"},
        [6, 5, 7, 6, 8, 6, 7, 9],
    ),
    (
        "cart-typeerror",
        1,
        "TypeError: Cannot read properties of undefined (reading 'id')",
        "CartSummary.render",
        "src/cart/CartSummary.tsx in render",
        "error",
        [
            ("Exception", "TypeError: Cannot read properties of undefined (reading 'id')", True),
            ("Browser", "Firefox 132", False),
        ],
        {"exception": {"type": "TypeError", "frames": 14}},
        [0, 0, 0, 1, 3, 9, 22, 40],
    ),
    (
        "export-payload",
        1015,
        "Large HTTP payload",
        "/api/orders/export (6.2 MB)",
        "/api/orders/export",
        "info",
        [("Payload Size", "6.2 MB", True), ("URL", "GET /api/orders/export", False)],
        {"size_bytes": 6_500_000},
        [2, 2, 3, 2, 2, 3, 2, 2],
    ),
    (
        "regex-email",
        2007,
        "Regex on Main Thread",
        "re.compile in validate_email",
        "app.utils.validate_email",
        "warning",
        [("Suspect function", "app.utils.validate_email", True), ("Duration", "41 ms", False)],
        {"duration_ms": 41},
        [1, 1, 0, 2, 1, 1, 3, 2],
    ),
    (
        "billing-monitor",
        4001,
        "Monitor failure: nightly-billing",
        "Missed check-in at 02:00 UTC",
        "nightly-billing",
        "error",
        [("Monitor", "nightly-billing", True), ("Reason", "missed check-in", False)],
        {"monitor": "nightly-billing", "schedule": "0 2 * * *"},
        [1, 0, 1, 1, 0, 1, 1, 1],
    ),
    (
        "rage-checkout",
        5002,
        "Rage Click",
        "button.checkout-submit",
        "/checkout",
        "info",
        [("Element", "button.checkout-submit", True), ("Clicks", "7 in 1.4 s", False)],
        {"clicks": 7},
        [0, 1, 1, 0, 2, 1, 4, 6],
    ),
]


def occurrences(rng: random.Random) -> list[dict[str, Any]]:
    """About a week of occurrences per issue, heavier where its weights say."""
    items = []
    for fingerprint, type_id, title, subtitle, culprit, level, evidence, data, weights in ISSUES:
        for day, weight in enumerate(weights):
            for _ in range(weight * 3):
                at = NOW - timedelta(days=7 - day, hours=rng.random() * 24)
                if at >= NOW:
                    at = NOW - timedelta(minutes=rng.randint(2, 50))
                event_id = uuid.uuid4().hex
                items.append(
                    {
                        "id": uuid.uuid4().hex,
                        "project_id": 1,
                        "fingerprint": [fingerprint],
                        "type": type_id,
                        "issue_title": title,
                        "subtitle": subtitle,
                        "culprit": culprit,
                        "level": level,
                        "evidence_display": [
                            {"name": n, "value": v, "important": i} for n, v, i in evidence
                        ],
                        "evidence_data": data,
                        "detection_time": at.isoformat(),
                        "event_id": event_id,
                        "event": {
                            "event_id": event_id,
                            "project_id": 1,
                            "platform": "javascript" if type_id in (1, 5002) else "python",
                            "timestamp": at.timestamp(),
                            "tags": {"environment": "production", "release": "shop@4.12.0"},
                        },
                    }
                )
    items.sort(key=lambda o: o["detection_time"])
    return items


def main() -> None:
    """Serve, fill, log in, shoot."""
    work = Path(tempfile.mkdtemp(prefix="console-shots-"))
    data_dir = work / "data"
    data_dir.mkdir()
    settings = Settings(data_dir=data_dir, admin_token=TOKEN, run_jobs=False)
    upgrade(settings.resolved_database_url)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        items = occurrences(random.Random(15))  # noqa: S311  (sample data)
        for start in range(0, len(items), 500):
            answer = httpx.post(
                f"{base}/occurrences/batch",
                json={"occurrences": items[start : start + 500]},
                headers=headers,
                timeout=60,
            )
            answer.raise_for_status()
        issues = httpx.get(f"{base}/issues?limit=100", headers=headers).json()["data"]
        by_title = {i["title"]: i for i in issues}
        n_plus_one = by_title["N+1 Query"]
        httpx.patch(
            f"{base}/issues/{n_plus_one['id']}",
            json={"status": "ignored", "substatus": "archived_until_escalating"},
            headers=headers,
        ).raise_for_status()
        httpx.patch(
            f"{base}/issues/{by_title['Large HTTP payload']['id']}",
            json={"status": "resolved"},
            headers=headers,
        ).raise_for_status()
        httpx.patch(
            f"{base}/issues/{by_title[ISSUES[1][2]]['id']}",
            json={"priority": "high", "assignee": "team:web"},
            headers=headers,
        ).raise_for_status()
        shoot(base, n_plus_one["id"])
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def shoot(base: str, issue_id: int) -> None:
    """Log in and save the two screenshots."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        chrome.get(f"{base}/ui/login")
        token = chrome.find_element(By.ID, "token")
        token.send_keys(TOKEN)
        token.submit()
        time.sleep(0.5)
        for url, name in (
            (f"{base}/ui/issues", "console-stream.png"),
            (f"{base}/ui/issues/{issue_id}", "console-issue.png"),
        ):
            chrome.get(url)
            height = chrome.execute_script("return document.documentElement.scrollHeight")
            chrome.set_window_size(1280, min(int(height) + 140, 2400))
            time.sleep(0.3)
            chrome.save_screenshot(str(ROOT / "docs" / "img" / name))
            print(f"saved docs/img/{name}")
    finally:
        chrome.quit()


if __name__ == "__main__":
    main()
