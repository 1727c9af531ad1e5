"""The console in a real browser: log in, filter by type, open an issue, resolve it, see the
activity, log out.

Headless Chromium (Debian ``chromium`` and ``chromium-driver``) drives the application served by
uvicorn, as in tests/test_swagger_ui.py, whose fixtures it shares: skipped without Chromium on a
developer's machine, failing in CI (``CI`` set), where it must run. No JavaScript is needed by the
pages; the browser also proves the Content-Security-Policy blocks nothing they use.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.builders import occurrence
from tests.conftest import ADMIN_TOKEN
from tests.test_swagger_ui import (  # noqa: F401  (fixtures)
    WAIT_SECONDS,
    browser,
    chromium,
    server_url,
)


def _seed(base: str) -> dict[str, int]:
    """Two issues of two types, sent through the API like a detector would."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ids = {}
    for title, type_id in (("Checkout failed", 1), ("Slow orders query", 1015)):
        body = occurrence(issue_title=title, type=type_id, fingerprint=[title])
        answer = httpx.post(f"{base}/occurrences", json=body, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text
        ids[title] = answer.json()["issue_id"]
    return ids


def _path(chrome: webdriver.Chrome) -> str:
    return urlparse(chrome.current_url).path


def _wait_path(chrome: webdriver.Chrome, path: str) -> None:
    WebDriverWait(chrome, WAIT_SECONDS).until(lambda c: _path(c) == path)


def _rows(chrome: webdriver.Chrome) -> list[str]:
    return [e.text for e in chrome.find_elements(By.CSS_SELECTOR, "table.stream td.title a")]


def test_log_in_filter_open_resolve_see_activity_log_out(
    server_url: str,  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
) -> None:
    ids = _seed(server_url)
    browser.delete_all_cookies()
    # Any page without a session leads to the login form.
    browser.get(f"{server_url}/")
    _wait_path(browser, "/ui/login")
    token = browser.find_element(By.ID, "token")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=token]").is_displayed()
    token.send_keys(ADMIN_TOKEN)
    token.submit()
    _wait_path(browser, "/ui/issues")
    assert any("Checkout failed" in r for r in _rows(browser))
    assert any("Slow orders query" in r for r in _rows(browser))
    # The session cookie is out of reach of scripts.
    cookies = {c["name"]: c for c in browser.get_cookies()}
    assert cookies["ip_console"]["httpOnly"] is True
    assert ADMIN_TOKEN not in cookies["ip_console"]["value"]

    Select(browser.find_element(By.ID, "f-type")).select_by_value("performance_large_http_payload")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, WAIT_SECONDS).until(lambda c: "type=" in c.current_url)
    rows = _rows(browser)
    assert len(rows) == 1 and "Slow orders query" in rows[0]
    browser.save_screenshot(str(tmp_path / "stream.png"))

    browser.find_element(By.PARTIAL_LINK_TEXT, "Slow orders query").click()
    issue_id = ids["Slow orders query"]
    _wait_path(browser, f"/ui/issues/{issue_id}")
    assert browser.find_element(By.CSS_SELECTOR, "h1").text == "Slow orders query"
    evidence = browser.find_element(By.CSS_SELECTOR, "dl.evidence .important dt").text
    assert "Duration" in evidence
    # The JSON evidence is folded until asked for.
    details = browser.find_element(By.CSS_SELECTOR, "details.json")
    assert not details.find_element(By.TAG_NAME, "pre").is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    assert details.find_element(By.TAG_NAME, "pre").is_displayed()

    browser.find_element(By.XPATH, "//button[normalize-space()='Resolve']").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, "p.flash.ok"), "Saved.")
    )
    timeline = browser.find_element(By.CSS_SELECTOR, "ol.timeline").text
    assert "set resolved" in timeline and "by admin" in timeline
    status = browser.find_element(By.CSS_SELECTOR, ".facts .status-resolved").text
    assert status == "resolved"
    browser.save_screenshot(str(tmp_path / "issue.png"))
    api = httpx.get(
        f"{server_url}/issues/{issue_id}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    ).json()
    assert api["status"] == "resolved"

    browser.find_element(By.XPATH, "//button[normalize-space()='Log out']").click()
    _wait_path(browser, "/ui/login")
    assert "ip_console" not in {c["name"] for c in browser.get_cookies()}
    browser.get(f"{server_url}/ui/issues/{issue_id}")
    _wait_path(browser, "/ui/login")
    assert (tmp_path / "issue.png").stat().st_size > 0


def test_the_stream_fits_a_phone_width(
    server_url: str,  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
) -> None:
    _seed(server_url)
    browser.delete_all_cookies()
    browser.set_window_size(390, 844)
    try:
        browser.get(f"{server_url}/ui/login")
        token = browser.find_element(By.ID, "token")
        token.send_keys(ADMIN_TOKEN)
        token.submit()
        _wait_path(browser, "/ui/issues")
        # No sideways scrolling of the page itself at phone width.
        width = browser.execute_script("return document.documentElement.scrollWidth")
        viewport = browser.execute_script("return window.innerWidth")
        assert width <= viewport
    finally:
        browser.set_window_size(1280, 1600)
