"""Headless chromium for the tests that open report.html in a real browser (Debian's chromium and
chromium-driver: no browser is downloaded). `chromium_or_reason()` says why none can be started."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# as root, chromium needs --no-sandbox; the rest keep it from reaching the network on its own
# (--enable-unsafe-swiftshader: WebGL, which parallel coordinates draw with, in software and without a warning)
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--window-size=1400,1000", "--enable-unsafe-swiftshader"]


def missing() -> str | None:
    """Why chromium cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"{path} is not installed (apt-get install chromium chromium-driver; .ci/run does it)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (uv sync --group dev)"
    return None


def start():
    """A headless chromium through chromium-driver, with a fresh profile and the console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="dropcli-chromium-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.profile_dir = profile  # removed by stop()
    return driver


def stop(driver) -> None:
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)
