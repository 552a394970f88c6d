"""The storefront in a real browser, used as a person would: browse, filter, register, buy.

Debian's Chromium, driven as tests/e2e/browser.py says (skipped without it outside CI).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.browser import NEEDS_CHROMIUM, fresh_page
from tests.e2e.conftest import ADDRESS, Platform, ShopClient

pytestmark = [pytest.mark.e2e, NEEDS_CHROMIUM]

SCREENSHOT = Path("/tmp/storefront.png")
SAGA_MS = 30_000  # an order from PENDING to its end state, as the orders page polls it


@pytest.fixture
def page(browser: Browser, platform: Platform) -> Iterator[Page]:
    """A fresh context (no cookies, no sessionStorage) on the platform's gateway."""
    with fresh_page(browser, platform.base_url, 1280, 900) as page:
        yield page


def cards(page: Page) -> Locator:
    return page.get_by_test_id("product-card")


def test_visitor_browses_pages_searches_and_filters_the_catalog(page: Page, shop: ShopClient) -> None:
    page.goto("/")

    expect(page.get_by_test_id("page-info")).to_have_text(re.compile(r"\d+ products"))
    found = re.search(r"(\d+) products", page.get_by_test_id("page-info").inner_text())
    total = int(found.group(1)) if found else 0
    assert total >= 20, f"the demo catalog should have at least 20 products, the page says {total}"
    seen: set[str] = set()
    # The grid shows a page at a time: walk the pages as a person would until 20 cards were seen.
    while len(seen) < 20:
        expect(cards(page).first).to_be_visible()
        ids = [card.get_attribute("data-product-id") for card in cards(page).all()]
        assert ids and not seen.intersection(ids), f"page repeats cards already seen: {ids}"
        seen.update(i for i in ids if i)
        if len(seen) < 20:
            first = ids[0]
            page.locator("#page-next").click()
            expect(cards(page).first).not_to_have_attribute("data-product-id", first or "")
    assert len(seen) >= 20

    category = "books"
    expected = shop.get("/api/products", params={"category": category, "page_size": 100}).json()
    page.get_by_label("Category").select_option(category)  # the choice alone submits the search
    expect(page.get_by_test_id("page-info")).to_contain_text(f"{expected['total']} products")
    expect(cards(page)).to_have_count(min(expected["total"], 12))
    categories = {c.text_content() for c in cards(page).locator(".category").all()}
    assert categories == {category}, categories

    page.get_by_label("Category").select_option("")
    page.get_by_label("Search").fill("keyboard")
    page.locator("#search-submit").click()
    expect(cards(page)).to_have_count(1)
    expect(page.get_by_test_id("product-link")).to_have_text("Mechanical Keyboard")


def register_log_out_and_log_in(page: Page) -> tuple[str, str]:
    email = f"browser-{uuid.uuid4().hex[:12]}@example.com"
    password = "Browser-" + uuid.uuid4().hex[:10]
    page.locator("#nav-login").click()
    page.locator("#register-name").fill("Browser Buyer")
    page.locator("#register-email").fill(email)
    page.locator("#register-password").fill(password)
    page.locator("#register-submit").click()
    expect(page.get_by_test_id("message")).to_contain_text("Welcome, Browser Buyer.")
    expect(page.get_by_test_id("user-email")).to_have_text(email)

    page.locator("#logout").click()
    expect(page.get_by_test_id("message")).to_contain_text("You are logged out.")
    expect(page.locator("#nav-orders")).to_be_hidden()

    page.locator("#nav-login").click()
    page.locator("#login-email").fill(email)
    page.locator("#login-password").fill(password)
    page.locator("#login-submit").click()
    expect(page.get_by_test_id("user-email")).to_have_text(email)
    expect(page.locator("#nav-orders")).to_be_visible()
    return email, password


def assert_cookie_session(page: Page) -> dict[str, Any]:
    """The session lives in HttpOnly cookies: no script on the page can read the tokens."""
    cookies = {c["name"]: c for c in page.context.cookies()}
    access = cookies["msashop_access"]
    assert access["httpOnly"] and access["secure"] and access["sameSite"] == "Strict"
    assert cookies["msashop_refresh"]["httpOnly"] and cookies["msashop_refresh"]["path"] == "/api/auth"
    assert not cookies["msashop_csrf"]["httpOnly"]
    visible = page.evaluate("JSON.stringify([document.cookie, {...sessionStorage}, {...localStorage}])")
    assert "msashop_csrf=" in visible
    assert access["value"] not in visible and "msashop_access" not in visible
    assert cookies["msashop_refresh"]["value"] not in visible
    return cookies


# A write from the page's own script, as an injected one would try it: with and without the token.
POST_ORDER = """async ([body, withCsrf]) => {
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("msashop_csrf=")).split("=")[1];
  const headers = {"Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID()};
  if (withCsrf) headers["X-CSRF-Token"] = csrf;
  const answer = await fetch("/api/orders", {method: "POST", headers, body: JSON.stringify(body)});
  return [answer.status, await answer.json()];
}"""


def add_to_cart_from_its_page(page: Page, product: dict[str, Any]) -> None:
    page.locator("#nav-shop").click()
    page.get_by_label("Search").fill(product["name"])
    page.locator("#search-submit").click()
    page.get_by_test_id("product-link").filter(has_text=product["name"]).first.click()
    expect(page.locator("#detail-name")).to_have_text(product["name"])
    expect(page.get_by_test_id("product-stock")).to_have_text(re.compile(r"^\d+ in stock$"))
    page.get_by_test_id("detail-add-to-cart").click()
    expect(page.get_by_test_id("message")).to_contain_text(f"{product['name']} added to the cart.")
    expect(page.get_by_test_id("cart-count")).to_have_text("1")


def check_out(page: Page, payment: str) -> None:
    page.locator("#nav-cart").click()
    expect(page.get_by_test_id("cart-line")).to_have_count(1)
    page.locator("#ship-name").fill("Browser Buyer")
    page.locator("#ship-line1").fill("1 Test Street")
    page.locator("#ship-city").fill("Seoul")
    page.locator("#ship-postal-code").fill("04524")
    page.locator("#ship-country").fill("KR")
    page.locator("#payment-token").select_option(payment)
    page.locator("#checkout-submit").click()
    expect(page.get_by_test_id("message")).to_contain_text("Order placed (PENDING)")
    expect(page.get_by_test_id("cart-count")).to_have_text("0")


def see_notification(page: Page, kind: str, order_id: str) -> None:
    """Notifications arrive a moment after the order's status: refresh the list as a person would."""
    page.locator("#nav-notifications").click()
    note = page.locator(f'[data-testid="notification-item"][data-type="{kind}"]', has_text=order_id)
    deadline = time.monotonic() + 15
    while note.count() == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.locator("#notifications-refresh").click()
    expect(note).to_have_count(1)


def test_new_customer_registers_buys_and_follows_orders_to_their_end(page: Page, shop: ShopClient) -> None:
    paid, declined = shop.products_in_stock(2, at_least=5)
    page.goto("/")
    expect(cards(page).first).to_be_visible()
    register_log_out_and_log_in(page)
    assert_cookie_session(page)

    add_to_cart_from_its_page(page, paid)
    check_out(page, "tok_visa")
    rows = page.get_by_test_id("order-row")
    expect(rows).to_have_count(1)
    order_id = rows.first.get_attribute("data-order-id") or ""
    assert order_id, "an order row names its order"
    first = page.locator(f'[data-testid="order-row"][data-order-id="{order_id}"]')
    expect(first.get_by_test_id("order-status")).to_have_text("CONFIRMED", timeout=SAGA_MS)
    expect(first).to_contain_text(paid["name"])
    see_notification(page, "order_confirmed", order_id)

    add_to_cart_from_its_page(page, declined)
    check_out(page, "tok_decline")
    expect(rows).to_have_count(2)
    second = page.locator(f'[data-testid="order-row"]:not([data-order-id="{order_id}"])')
    expect(second.get_by_test_id("order-status")).to_have_text("CANCELLED", timeout=SAGA_MS)
    expect(second.get_by_test_id("order-status-reason")).to_have_text("payment_declined")
    expect(second).to_contain_text(declined["name"])
    expect(first.get_by_test_id("order-status")).to_have_text("CONFIRMED")

    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_a_cookie_session_writes_only_with_the_csrf_token(page: Page, shop: ShopClient) -> None:
    (product,) = shop.products_in_stock(1, at_least=5)
    page.goto("/")
    register_log_out_and_log_in(page)
    assert_cookie_session(page)
    body = {
        "items": [{"product_id": product["id"], "quantity": 1}],
        "payment": {"token": "tok_visa"},
        "shipping_address": ADDRESS,
    }
    status, answer = page.evaluate(POST_ORDER, [body, False])
    assert (status, answer["error"]["code"]) == (403, "csrf_failed")
    status, order = page.evaluate(POST_ORDER, [body, True])
    assert status == 202 and order["status"] == "PENDING", order
    # The order is the cookie's user's: the orders page lists it.
    page.locator("#nav-orders").click()
    expect(page.locator(f'[data-testid="order-row"][data-order-id="{order["id"]}"]')).to_have_count(1)
