"""A real browser for tests: Debian's headless Chromium driven by Selenium through Debian's
chromium-driver (matched versions; Selenium Manager never downloads anything here).

    with chromium() as driver:
        driver.get(url)
        wait_for(driver, "the link is cut", lambda d: d.find_element(...).text == "cut")

Screenshots go to ``artifacts/`` at the repository's root (or ``$EDGESCOPE_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(
    os.environ.get("EDGESCOPE_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")
)


def browser_missing() -> str | None:
    if not CHROMIUM.exists() or not DRIVER.exists():
        return "needs Debian's chromium and chromium-driver (make system-deps as root)"
    if shutil.which("true") is None:  # pragma: no cover
        return "no shell tools"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (pip install -e '.[dev]')"
    return None


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium; skips the test when it is not installed."""
    if (reason := browser_missing()) is not None:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, what: str, condition: Callable[[Any], Any], timeout: float = 30.0) -> Any:
    """Poll ``condition`` in the page until it is truthy; fail naming ``what`` (generous
    timeouts: this is a wait, not a performance claim)."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(
            driver, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
        ).until(condition)
    except TimeoutException:
        shot = screenshot(driver, "failed-" + "".join(c if c.isalnum() else "-" for c in what)[:60])
        pytest.fail(f"not within {timeout:.0f} s: {what} (screenshot: {shot})")


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


# Read the page in one script each: the console redraws its tables on every change, so an
# element found in one WebDriver call may be gone by the next (stale), under load often.


def attribute(driver: Any, selector: str, name: str) -> str | None:
    """``name`` of the first element matching ``selector`` (None when there is none)."""
    found: str | None = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        " return e ? e.getAttribute(arguments[1]) : null;",
        selector,
        name,
    )
    return found


def text_of(driver: Any, selector: str) -> str:
    """The visible text of the first element matching ``selector`` ('' when there is none)."""
    found: str = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", selector
    )
    return found


def count(driver: Any, selector: str) -> int:
    found: int = driver.execute_script(
        "return document.querySelectorAll(arguments[0]).length;", selector
    )
    return found
