"""Every error leaves a service as the CONTRACT's JSON body, never as a stack trace."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from msashop.chassis.errors import Conflict, NotFound, install_error_handlers


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=20)
    quantity: int = Field(ge=1)


def build_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("order not found")

    @app.get("/taken")
    async def taken() -> None:
        raise Conflict("email already registered", code="email_taken")

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in a secret place")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: Starlette re-raises after answering 500; we test the answer.
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_app_error_becomes_its_status_and_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/missing")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "order not found"}}


async def test_app_error_may_carry_a_specific_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/taken")

    assert response.status_code == 409
    assert response.json() == {"error": {"code": "email_taken", "message": "email already registered"}}


@pytest.mark.parametrize(
    "body",
    [{"name": "", "quantity": 1}, {"name": "x", "quantity": 0}, {"name": "x", "quantity": 1, "extra": 1}, {}],
)
async def test_invalid_body_is_422_validation_error_with_details(client: httpx.AsyncClient, body) -> None:
    response = await client.post("/items", json=body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"]
    assert error["details"] and all({"loc", "msg", "type"} <= set(d) for d in error["details"])


async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_wrong_method_is_a_json_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/missing")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_unexpected_exception_is_500_without_stack_trace_or_detail(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")

    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal server error"}}
    assert "Traceback" not in response.text and "hunter2" not in response.text
