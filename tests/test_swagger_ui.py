"""/docs in a real browser: Authorize with the admin token, then "Try it out" gets a 200.

Headless Chromium (Debian packages ``chromium`` and ``chromium-driver``) drives the Swagger UI of
the application served over HTTP by uvicorn, and checks that /redoc renders. Without Chromium the test
is skipped on a developer's machine and fails in CI (``CI`` set), where it must run.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ADMIN_TOKEN

WAIT_SECONDS = 15.0
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1600",
]
LIST_ISSUES = "#operations-issues-list_issues_issues_get"


def _executable(name: str, debian_path: str) -> str | None:
    if Path(debian_path).is_file():
        return debian_path
    return shutil.which(name)


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    """Paths of the Chromium browser and its driver."""
    browser = _executable("chromium", "/usr/bin/chromium")
    driver = _executable("chromedriver", "/usr/bin/chromedriver")
    if browser is None or driver is None:
        message = "needs the Debian packages chromium and chromium-driver"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{message} (CI must install them)")
        pytest.skip(message)
    return browser, driver


@pytest.fixture
def server_url(app: FastAPI) -> Iterator[str]:
    """The test's application served by uvicorn on a free loopback port, in a thread."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="swagger-ui-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser(
    chromium: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a new, empty profile (Selenium Manager is never asked)."""
    binary, driver = chromium
    tmp_path = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def _visible(chrome: webdriver.Chrome, css: str) -> WebElement:
    element: WebElement = WebDriverWait(chrome, WAIT_SECONDS).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, css))
    )
    return element


def _response_status(chrome: webdriver.Chrome, expected: str) -> None:
    """Wait until the operation's live response shows ``expected`` as its status code."""
    WebDriverWait(chrome, WAIT_SECONDS).until(
        ec.text_to_be_present_in_element(
            (
                By.CSS_SELECTOR,
                f"{LIST_ISSUES} .live-responses-table tr.response .response-col_status",
            ),
            expected,
        )
    )


def _lock_reads(chrome: webdriver.Chrome, label: str) -> None:
    """Wait until the lock icon of the operation says ``label``."""
    WebDriverWait(chrome, WAIT_SECONDS).until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, f'{LIST_ISSUES} button.authorization__btn[aria-label="{label}"]')
        )
    )


def test_authorize_then_try_it_out_answers_200(
    server_url: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    screenshot = tmp_path / "swagger.png"
    try:
        browser.get(f"{server_url}/docs")
        # Before authorizing, "Try it out" on a protected operation gets the service's 401.
        _lock_reads(browser, "authorization button unlocked")  # the operation has security
        _visible(browser, f"{LIST_ISSUES} .opblock-summary").click()
        _visible(browser, f"{LIST_ISSUES} button.try-out__btn").click()
        _visible(browser, f"{LIST_ISSUES} button.execute").click()
        _response_status(browser, "401")

        _visible(browser, ".auth-wrapper button.authorize").click()
        _visible(browser, "input#auth-bearer-value").send_keys(ADMIN_TOKEN)
        _visible(browser, ".modal-ux .auth-btn-wrapper button.authorize").click()
        _visible(browser, ".modal-ux button.btn-done").click()
        WebDriverWait(browser, WAIT_SECONDS).until(
            ec.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux"))
        )
        _lock_reads(browser, "authorization button locked")

        _visible(browser, f"{LIST_ISSUES} button.execute").click()
        _response_status(browser, "200")
        curl = browser.find_element(By.CSS_SELECTOR, f"{LIST_ISSUES} .curl-command").text
        assert f"Authorization: Bearer {ADMIN_TOKEN}" in curl
        body = browser.find_element(
            By.CSS_SELECTOR,
            f"{LIST_ISSUES} .live-responses-table tr.response .response-col_description",
        ).text
        assert '"data"' in body
    finally:
        responses = browser.find_elements(By.CSS_SELECTOR, f"{LIST_ISSUES} .responses-inner")
        if responses:
            browser.execute_script("arguments[0].scrollIntoView()", responses[0])
        browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 0


def test_redoc_renders_the_api(server_url: str, browser: webdriver.Chrome) -> None:
    browser.get(f"{server_url}/redoc")
    WebDriverWait(browser, WAIT_SECONDS).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, "h1"), "Issue Platform")
    )
    WebDriverWait(browser, WAIT_SECONDS).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[data-section-id='tag/issues']"))
    )
