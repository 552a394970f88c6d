"""The trace page (/traces) in a real browser: the admin logs in on it (a cookie session, as the
storefront's), finds a checkout's trace, reads its waterfall and a span; a customer gets a 403.

Same browser as test_storefront_browser.py (tests/e2e/browser.py: Debian's Chromium, skipped
without it outside CI).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import NEEDS_CHROMIUM, STEP_MS, fresh_page
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Platform, ShopClient, User
from tests.e2e.test_tracing import CHECKOUT_SERVICES, checkout_trace

pytestmark = [pytest.mark.e2e, NEEDS_CHROMIUM]

SCREENSHOT = Path("/tmp/msa/traces.png")


@pytest.fixture
def page(browser: Browser, platform: Platform) -> Iterator[Page]:
    with fresh_page(browser, platform.base_url, 1440, 1000) as page:
        yield page


@pytest.fixture
def traced(shop: ShopClient) -> tuple[User, dict[str, Any]]:
    """A buyer and the complete trace of their checkout (through the API, before the page looks)."""
    buyer = shop.register_and_login("Traced Browser Buyer")
    [product] = shop.products_in_stock(1)
    assert shop.checkout(buyer.token, [(product["id"], 1)])["status"] == "CONFIRMED"
    trace = checkout_trace(shop, buyer, shop.admin_token())
    assert CHECKOUT_SERVICES <= {p["service"] for p in trace.get("processes", [])}, trace
    return buyer, trace


def log_in_on_the_trace_page(page: Page, email: str, password: str) -> None:
    expect(page.locator("#login")).to_be_visible()
    page.locator("#login-email").fill(email)
    page.locator("#login-password").fill(password)
    page.locator("#login-submit").click()


def cookie(page: Page, name: str) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == name), None)


def check_bars_follow_time(page: Page, trace: dict[str, Any]) -> None:
    """Each bar starts at its offset and is as wide as its span, in the track's scale (±1.5%)."""
    total = max(trace["duration_ms"], 0.001)
    track = page.locator(".span-track").first.bounding_box()
    assert track
    for span in trace["spans"]:
        bar = page.locator(f'.span-row[data-span-id="{span["span_id"]}"] .span-bar').bounding_box()
        assert bar, span["name"]
        left = (bar["x"] - track["x"]) / track["width"]
        assert abs(left - span["offset_ms"] / total) < 0.015, (span["name"], left, span["offset_ms"])
        if span["duration_ms"] / total > 0.02:  # narrower ones are held at a visible minimum width
            width = bar["width"] / track["width"]
            assert abs(width - span["duration_ms"] / total) < 0.015, (span["name"], width)
    assert any(s["offset_ms"] / total > 0.1 for s in trace["spans"]), "every span starts with the root?"


def test_the_admin_reads_a_checkout_trace_and_a_customer_is_refused(
    page: Page, shop: ShopClient, traced: tuple[User, dict[str, Any]]
) -> None:
    buyer, trace = traced
    trace_id = trace["trace_id"]
    page.goto("/traces")
    log_in_on_the_trace_page(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.get_by_test_id("who")).to_have_text(ADMIN_EMAIL)
    # The session is the storefront's: HttpOnly cookies, nothing a script could read or keep.
    access = cookie(page, "msashop_access")
    assert access and cookie(page, "msashop_refresh") and cookie(page, "msashop_csrf")
    kept = page.evaluate("JSON.stringify([document.cookie, {...sessionStorage}, {...localStorage}])")
    assert access not in kept and "access_token" not in kept and "refresh_token" not in kept

    # Find it as a person would: the traces through the payment service.
    page.locator("#filter-service").fill("payment")
    page.locator("#filters button[type=submit]").click()
    row = page.locator(f'#trace-rows tr[data-trace-id="{trace_id}"]')
    expect(row).to_be_visible()
    root = trace["spans"][0]
    assert root["parent_span_id"] is None and root["name"].startswith("POST "), root
    expect(row).to_contain_text(root["name"])
    row.click()

    waterfall = page.get_by_test_id("waterfall")
    expect(waterfall).to_be_visible()
    expect(page.locator("#trace-title")).to_have_text(f"gateway: {root['name']}")
    bars = page.locator("#waterfall .span-bar")
    expect(bars).to_have_count(len(trace["spans"]))
    assert bars.count() >= 10
    shown = set(page.locator("#waterfall .span-label strong").all_inner_texts())
    assert len(shown) >= 6 and CHECKOUT_SERVICES <= shown, shown
    check_bars_follow_time(page, trace)

    payment = next(s for s in trace["spans"] if s["service"] == "payment")
    page.locator(f'.span-row[data-span-id="{payment["span_id"]}"]').click()
    detail = page.locator("#span-detail")
    expect(detail).to_be_visible()
    expect(detail.locator("h3")).to_have_text(payment["name"])
    expect(detail).to_contain_text(payment["span_id"])
    expect(detail).to_contain_text(f"payment ({payment['instance']})")
    page.evaluate("scrollTo(0, 0)")  # the sticky top bar where it belongs in a full-page shot
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # An expired access cookie: the page refreshes through the refresh cookie and carries on.
    page.context.clear_cookies(name="msashop_access")
    page.locator("#filters button[type=submit]").click()
    deadline = time.monotonic() + STEP_MS / 1000
    while cookie(page, "msashop_access") is None and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert cookie(page, "msashop_access") not in (None, access)
    expect(row).to_be_visible()
    expect(page.get_by_test_id("message")).to_be_hidden()

    page.locator("#logout").click()
    expect(page.get_by_test_id("message")).to_have_text("Logged out.")
    expect(page.locator("#browser")).to_be_hidden()
    assert cookie(page, "msashop_access") is None and cookie(page, "msashop_csrf") is None

    # A customer logged in on the storefront is logged in here too, and refused.
    page.goto("/")
    page.locator("#nav-login").click()
    page.locator("#login-email").fill(buyer.email)
    page.locator("#login-password").fill(buyer.password)
    page.locator("#login-submit").click()
    expect(page.get_by_test_id("user-email")).to_have_text(buyer.email)
    page.goto("/traces")
    expect(page.get_by_test_id("message")).to_have_text("Traces are for admins only: log in as the admin.")
    expect(page.get_by_test_id("who")).to_have_text(buyer.email)
    expect(page.get_by_test_id("trace-table")).to_be_hidden()
    expect(page.locator("#login")).to_be_visible()
