"""A real headless Chromium for the playground tests (playground.md, Tests): Debian's
`chromium` driven through its `chromium-driver` by Selenium, one browser per test session.

`make test` installs both packages when they are missing and it runs as root (CI); anywhere
else a missing browser FAILS the tests with one line saying how to install it — the browser
tests are never skipped. Elements are found by their accessible names (what a screen reader
announces), and the name Chromium computes is checked, not just the attribute.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.serverproc import ROOT
from tests.waiting import DEADLINE, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = (
    "install Debian's chromium and chromium-driver: "
    "sudo apt-get install --no-install-recommends chromium chromium-driver "
    "(make test does it when run as root)"
)
DESKTOP = (1366, 960)
PHONE = (390, 844)
# Screenshots and other artifacts: $IMAGED_ARTIFACTS, else tests/artifacts/ (ignored by git).
ARTIFACTS = Path(os.environ.get("IMAGED_ARTIFACTS") or ROOT / "tests" / "artifacts")


def missing_browser(chromium: Path = CHROMIUM, driver: Path = CHROMEDRIVER) -> str | None:
    """None when both executables are there, else the one line that says what to do."""
    missing = [str(p) for p in (chromium, driver) if not (p.is_file() and os.access(p, os.X_OK))]
    if not missing:
        return None
    return f"the playground tests need a real Chromium; missing {', '.join(missing)}: {INSTALL}"


def start_browser(chromium: Path = CHROMIUM, driver: Path = CHROMEDRIVER) -> WebDriver:
    """Chromium under Selenium, or a test failure (never a skip) saying how to install it."""
    problem = missing_browser(chromium, driver)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(driver)), options=options)


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def browser(downloads: Path) -> Iterator[WebDriver]:
    driver = start_browser()
    try:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        yield driver
    finally:
        driver.quit()


# --- finding and reading elements -------------------------------------------------------


def _xpath_literal(text: str) -> str:
    return f'"{text}"' if '"' not in text else f"'{text}'"


def named(driver: WebDriver, name: str, timeout: float = DEADLINE) -> WebElement:
    """The element whose accessible name (as Chromium computes it) is `name`: by
    `aria-label`, `alt`, or a `<label for>` with that text."""
    lit = _xpath_literal(name)
    xpath = (
        f"//*[@aria-label={lit}] | //img[@alt={lit}] | "
        f"//*[@id=//label[normalize-space()={lit}]/@for] | //button[normalize-space()={lit}] | "
        f"//a[normalize-space()={lit}]"
    )

    def find() -> WebElement | None:
        for element in driver.find_elements(By.XPATH, xpath):
            if element.accessible_name == name:
                return element
        return None

    return wait_until(find, f"an element named {name!r}", timeout)


def js(driver: WebDriver, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def download(driver: WebDriver, link: WebElement, folder: Path) -> bytes:
    """Click a download link; the bytes of the file the browser saved in `folder`."""
    for old in folder.iterdir():
        old.unlink()
    name = link.get_attribute("download")
    assert name
    link.click()
    target = folder / name
    wait_until(target.is_file, f"{target} downloaded")  # Chromium renames it when complete
    return target.read_bytes()


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    """Browser log entries at error level since the last call (the log is drained)."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def viewport(driver: WebDriver, size: tuple[int, int] | None) -> None:
    """Emulate a viewport of exactly `size` (a phone: mobile); None = the window's own."""
    if size is None:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return
    width, height = size
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


@contextlib.contextmanager
def color_scheme(driver: WebDriver, scheme: str) -> Iterator[None]:
    """The page as under `prefers-color-scheme: <scheme>`, for the duration."""
    feature = {"name": "prefers-color-scheme", "value": scheme}
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [feature]})
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def screenshot(driver: WebDriver, name: str, size: tuple[int, int]) -> Path:
    """A full-page screenshot at `size`'s width, kept under ARTIFACTS: the viewport grows
    until the page (and any column that scrolls by itself) fits in it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    width, height = size
    viewport(driver, size)
    try:
        for _ in range(6):
            js(driver, "for (const e of document.querySelectorAll('*')) e.scrollTop = 0")
            needed = int(js(driver, "return document.documentElement.scrollHeight"))
            if needed <= height:
                break
            height = needed
            viewport(driver, (width, height))
        path = ARTIFACTS / f"{name}.png"
        driver.save_screenshot(str(path))
    finally:
        viewport(driver, None)
    return path
