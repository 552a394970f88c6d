"""parse_expand, and compose's handling of answers it cannot use (no I/O: a fake client)."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI

from msashop.chassis.errors import Unprocessable, install_error_handlers
from msashop.chassis.service_client import ServiceClient
from msashop.services.order.composition import compose, parse_expand


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, set()),
        ("", set()),
        ("user", {"user"}),
        ("user,products", {"user", "products"}),
        (" products , user ,", {"user", "products"}),
        ("user,user", {"user"}),
    ],
)
def test_parse_expand(raw: str | None, expected: set[str]) -> None:
    assert parse_expand(raw) == expected


@pytest.mark.parametrize("raw", ["payments", "user,Products", "user;products", "*"])
def test_parse_expand_refuses_what_it_does_not_know(raw: str) -> None:
    with pytest.raises(Unprocessable):
        parse_expand(raw)


async def test_a_bad_expand_answers_422_with_the_allowed_values() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/orders/o1")
    async def get(expand: str | None = None) -> dict[str, Any]:
        return {"expand": sorted(parse_expand(expand))}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/orders/o1", params={"expand": "user,reviews"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "reviews" in error["message"]
    assert error["details"] == {"unknown": ["reviews"], "allowed": ["products", "user"]}


class FakeClient:
    """Answers every GET with `body`."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def get(self, service: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((service, path, kwargs))
        return self.body


ORDER = {
    "id": "o1",
    "user_id": "u1",
    "items": [{"product_id": "p1", "name": "Pen", "quantity": 1, "unit_price": 1.0, "line_total": 1.0}],
}


@pytest.mark.parametrize("body", [None, {"items": []}, "oops"])
async def test_an_answer_that_is_not_a_list_is_a_failure(body: Any) -> None:
    client = FakeClient(body)

    composed = await compose(ORDER, frozenset({"user", "products"}), cast(ServiceClient, client), None)

    assert composed["user"] == {"id": "u1", "name": "Unknown User", "email": None}
    assert composed["items"][0]["product"] is None
    assert composed["degraded"] is True


async def test_without_an_authorization_no_header_is_added() -> None:
    client = FakeClient([])

    await compose(ORDER, frozenset({"user"}), cast(ServiceClient, client), None)

    assert client.calls == [("user", "/users/batch", {"params": {"ids": "u1"}, "headers": {}})]
