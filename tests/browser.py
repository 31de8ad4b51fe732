"""A headless Chromium driven by selenium, for the HTML report's tests (skips when absent)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> tuple[str, str] | str:
    """(browser, chromedriver) paths, or why there is none."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return "no chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver; scripts/setup does it as root)"
    return browser, driver


def start_browser() -> Iterator[Any]:
    found = find_browser()
    if isinstance(found, str):
        pytest.skip(found)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = found[0]
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: Any, path: Path) -> list[dict]:
    """Load the file; returns the console entries of the load (errors and warnings included)."""
    driver.get_log("browser")  # drop what an earlier page logged
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(Path(path).resolve().as_uri())
    logs = driver.get_log("browser")
    # a generous wait on a shared machine: a large page may still be parsing when get() returns
    WebDriverWait(driver, 60, poll_frequency=0.05).until(
        lambda d: d.execute_script("return window.llmevalReady === true"), f"the report's script did not finish: {logs}"
    )
    return logs + driver.get_log("browser")
