"""API composition for one order: its buyer from the user service and its products from the
product service, fetched through their APIs (never their tables) in two batch calls made in
parallel, never a call per line.

The answer is the order's JSON with, for `expand` ⊆ {"user", "products"}:
- `user`: `{id, name, email}` of the buyer;
- each item's `product`: the product service's product (`{id, sku, name, description,
  category, price, currency}`), next to the line it belongs to, so a client reads a line and its
  product together; `null` when the product is unknown or could not be fetched (the line keeps
  its own `name`, `unit_price` and totals, which are what the buyer paid);
- `degraded`: true when a service we asked failed (down, an error answer, a malformed answer or
  no answer within `timeout`); its part is then a fallback: the user becomes
  `{"id": <user_id>, "name": "Unknown User", "email": null}`, the products `null`.
A record the service says does not exist (a deleted user or product) gets the same fallback but
is not `degraded`: the service answered, and asking again would give the same answer.
With an empty `expand` the order comes back as it is: no calls, no `degraded`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from msashop.chassis.errors import AppError, Unprocessable
from msashop.chassis.service_client import ServiceClient

log = structlog.get_logger()

EXPANDABLE = frozenset({"user", "products"})
# Shorter than the client's 5 s: a read answers with fallbacks rather than wait on a slow service.
DEFAULT_TIMEOUT_SECONDS = 2.0


def parse_expand(raw: str | None) -> frozenset[str]:
    """`"user,products"` -> {"user", "products"}; blanks ignored; anything else is a 422."""
    wanted = frozenset(part.strip() for part in (raw or "").split(",") if part.strip())
    _check(wanted)
    return wanted


def fallback_user(user_id: str) -> dict[str, Any]:
    return {"id": user_id, "name": "Unknown User", "email": None}


async def compose(
    order: dict[str, Any],
    expand: frozenset[str],
    client: ServiceClient,
    authorization: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """The order plus what `expand` names. `authorization` is the caller's header, forwarded
    because `/users/batch` needs an authenticated caller (None: the client forwards the current
    request's own header, if any). Never raises for a failing upstream; 422 for a bad `expand`."""
    _check(expand)
    if not expand:
        return dict(order)
    headers = {"Authorization": authorization} if authorization else {}
    calls = _Calls(client, headers, timeout)
    user_id = str(order["user_id"])
    product_ids = list(dict.fromkeys(str(item["product_id"]) for item in order.get("items", [])))
    user, products = await asyncio.gather(
        calls.user(user_id) if "user" in expand else _nothing(),
        calls.products(product_ids) if "products" in expand else _nothing(),
    )
    composed = dict(order)
    if "user" in expand:
        composed["user"] = user
    if "products" in expand:
        composed["items"] = [
            {**item, "product": products.get(str(item["product_id"]))} for item in order.get("items", [])
        ]
    composed["degraded"] = calls.degraded
    return composed


class _Calls:
    """The two batch calls; each turns any failure into a fallback and marks the answer degraded."""

    def __init__(self, client: ServiceClient, headers: dict[str, str], timeout: float) -> None:
        self.client = client
        self.headers = headers
        self.timeout = timeout
        self.degraded = False

    async def user(self, user_id: str) -> dict[str, Any]:
        found = await self._batch("user", "/users/batch", [user_id])
        user = found.get(user_id) if found is not None else None
        if user is None:
            return fallback_user(user_id)
        return {"id": user_id, "name": user.get("name"), "email": user.get("email")}

    async def products(self, product_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not product_ids:
            return {}
        return await self._batch("product", "/products/batch", product_ids) or {}

    async def _batch(self, service: str, path: str, ids: list[str]) -> dict[str, dict[str, Any]] | None:
        """{id: record} from one batch call; None (and degraded) if the call failed."""
        try:
            async with asyncio.timeout(self.timeout):
                body = await self.client.get(
                    service, path, params={"ids": ",".join(ids)}, headers=self.headers
                )
            return _by_id(body)
        except (AppError, TimeoutError, ValueError) as exc:
            log.warning("composition.fallback", upstream=service, path=path, error=type(exc).__name__)
            self.degraded = True
            return None


def _by_id(body: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(body, list):
        raise ValueError("a batch answer is a JSON list")
    return {str(r["id"]): r for r in body if isinstance(r, dict) and "id" in r}


async def _nothing() -> Any:
    return None


def _check(expand: frozenset[str]) -> None:
    unknown = sorted(expand - EXPANDABLE)
    if unknown:
        allowed = sorted(EXPANDABLE)
        raise Unprocessable(
            f"unknown expand value(s): {', '.join(unknown)}; allowed: {', '.join(allowed)}",
            details={"unknown": unknown, "allowed": allowed},
        )
