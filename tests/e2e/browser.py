"""The browser the e2e browser tests drive: Debian's Chromium (/usr/bin/chromium; `make test`
installs it when it can), never one Playwright downloads. Without it those tests skip, except
under CI=true, where they fail. Sync Playwright: it cannot run inside pytest-asyncio's loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
MISSING = f"{CHROMIUM} is missing (Debian's chromium package; `make test` installs it as root)"
IN_CI = os.environ.get("CI", "").lower() == "true"
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_MS = 10_000  # one click's effect: a page of products, a login, a placed order
# Decided at collection, so a run without the browser does not start the platform only to skip.
NEEDS_CHROMIUM = pytest.mark.skipif(not CHROMIUM.exists() and not IN_CI, reason=MISSING)


def chromium() -> Iterator[Browser]:
    """The browser, for the `browser` fixture (tests/e2e/conftest.py) to yield."""
    if not CHROMIUM.exists():  # only under CI=true, where a missing browser is a failure
        pytest.fail(MISSING, pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@contextmanager
def fresh_page(browser: Browser, base_url: str, width: int, height: int) -> Iterator[Page]:
    """A page in a fresh context (no cookies, no storage) on `base_url`; fails the test if the
    page threw an uncaught JavaScript error meanwhile."""
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": height})
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"uncaught JavaScript errors on the page: {errors}"
