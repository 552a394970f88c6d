"""The platform's OpenAPI document: the services' documents at the gateway's paths."""

from __future__ import annotations

from typing import Any

from msashop.gateway.openapi import PlatformDocument, merge, public_path


def _op(op_id: str, *statuses: str, ref: str | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {s: {"description": s} for s in statuses}
    if ref:
        schema = {"$ref": f"#/components/schemas/{ref}"}
        responses["200"]["content"] = {"application/json": {"schema": schema}}
    return {"operationId": op_id, "responses": responses}


PRODUCT = {
    "paths": {
        "/products/{product_id}": {"get": _op("get_product", "200", "422", ref="ProductOut")},
        "/products": {"post": _op("create", "201", "422")},
        "/admin/dlq": {"get": _op("list_dead_letters", "200")},
    },
    "components": {"schemas": {"ProductOut": {"type": "object", "title": "product"}}},
}
LEGACY = {
    "paths": {
        "/legacy/products": {"get": _op("legacy_list", "200", ref="ProductOut")},
        "/products/{product_id}": {"get": _op("copy", "200")},  # its copy of the catalog: not routed
        "/admin/dlq": {"get": _op("list_dead_letters", "200")},
    },
    "components": {"schemas": {"ProductOut": {"type": "object", "title": "legacy product"}}},
}


def test_service_paths_become_the_gateways_and_unrouted_ones_are_left_out() -> None:
    assert public_path("product", "/products/{product_id}") == "/api/products/{product_id}"
    assert public_path("order", "/admin/dlq/{dead_letter_id}") == "/api/admin/dlq/order/{dead_letter_id}"
    assert public_path("user", "/.well-known/jwks.json") == "/.well-known/jwks.json"
    assert public_path("legacy", "/products/{product_id}") is None  # /api/products is the product service's
    assert public_path("order", "/health") is None


def test_merge_keeps_each_service_apart() -> None:
    doc = merge({"product": PRODUCT, "legacy": LEGACY})
    paths = doc["paths"]
    assert sorted(paths) == [
        "/api/admin/dlq/legacy",
        "/api/admin/dlq/product",
        "/api/legacy/products",
        "/api/products",
        "/api/products/{product_id}",
    ]
    assert paths["/api/products/{product_id}"]["get"]["operationId"] == "product_get_product"
    assert paths["/api/admin/dlq/legacy"]["get"]["operationId"] == "legacy_list_dead_letters"
    # Same schema name, other shape: the later service's copy is renamed, and its refs follow.
    schemas = doc["components"]["schemas"]
    assert schemas["ProductOut"]["title"] == "legacy product"  # services are merged by name
    assert schemas["ProductProductOut"]["title"] == "product"
    product_ref = paths["/api/products/{product_id}"]["get"]["responses"]["200"]["content"]
    assert product_ref["application/json"]["schema"]["$ref"] == "#/components/schemas/ProductProductOut"


def test_every_operation_declares_the_edges_errors_in_the_contracts_body() -> None:
    doc = merge({"product": PRODUCT})
    error = {"$ref": "#/components/schemas/Error"}
    read = doc["paths"]["/api/products/{product_id}"]["get"]["responses"]
    write = doc["paths"]["/api/products"]["post"]["responses"]
    assert {"401", "404", "422", "429", "503"} <= set(read) and "413" not in read
    assert {"400", "401", "413", "422", "429", "503"} <= set(write) and "404" not in write
    assert read["422"]["content"]["application/json"]["schema"] == error  # not FastAPI's {"detail"}
    assert write["413"]["content"]["application/json"]["schema"] == error
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]


async def test_a_service_that_does_not_answer_is_left_out_and_asked_again() -> None:
    asked: list[str] = []
    down = {"product"}

    async def fetch(service: str) -> dict[str, Any]:
        asked.append(service)
        if service in down:
            raise ConnectionError(service)
        return PRODUCT if service == "product" else {"paths": {}}

    document = PlatformDocument(fetch)
    assert "/api/products" not in (await document.get())["paths"]
    down.clear()
    assert "/api/products" in (await document.get())["paths"]  # the incomplete build was not kept
    count = len(asked)
    await document.get()
    assert len(asked) == count  # a complete one is, for max_age
