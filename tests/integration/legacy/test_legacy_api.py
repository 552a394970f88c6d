"""The old API under /legacy: the catalog the old clients knew, and orders on the same database."""

from __future__ import annotations

from tests.integration.legacy.conftest import Pair


async def test_old_style_catalog(pair: Pair) -> None:
    client = pair.legacy.client
    page = (
        await client.get("/legacy/products", params={"catCd": "books", "pageNo": 2, "pageSize": 4})
    ).json()
    assert (page["resultCode"], page["resultMsg"], page["totalCount"], page["pageNo"]) == (
        "0000",
        "SUCCESS",
        6,
        2,
    )
    assert len(page["list"]) == 2 and {p["catCd"] for p in page["list"]} == {"books"}
    first = page["list"][0]
    assert set(first) == {
        "prodId",
        "prodCd",
        "prodNm",
        "prodDesc",
        "catCd",
        "salePrc",
        "currCd",
        "regDt",
        "updDt",
    }
    assert len(first["regDt"]) == 14 and first["regDt"].isdigit()

    new = (await pair.product.client.get(f"/products/{first['prodId']}")).json()
    one = (await client.get(f"/legacy/products/{first['prodId']}")).json()
    assert one["data"] == first
    assert (first["prodCd"], first["prodNm"], first["salePrc"]) == (
        new["sku"],
        new["name"],
        f"{new['price']:.2f}",
    )

    found = (await client.get("/legacy/products", params={"keyword": "KEYBOARD"})).json()
    assert [p["prodCd"] for p in found["list"]] == ["EL-KEYBRD"]


async def test_old_style_errors_use_the_platform_error_body(pair: Pair) -> None:
    client = pair.legacy.client
    missing = await client.get("/legacy/products/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = await client.get("/legacy/products", params={"pageSize": 101})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


async def test_orders_are_priced_from_the_catalog_and_kept_after_a_product_is_deleted(pair: Pair) -> None:
    legacy = pair.legacy
    items = (await legacy.client.get("/legacy/products", params={"pageSize": 2})).json()["list"]
    body = {
        "orderItems": [
            {"prodId": items[0]["prodId"], "ordQty": 2},
            {"prodId": items[1]["prodId"], "ordQty": 1},
        ]
    }
    assert (await legacy.client.post("/legacy/orders", json=body)).status_code == 401
    placed = await legacy.client.post("/legacy/orders", json=body, headers=legacy.auth_headers("u1"))
    assert placed.status_code == 201
    order = placed.json()["data"]
    expected = sum(float(i["salePrc"]) * q for i, q in ((items[0], 2), (items[1], 1)))
    assert (order["custId"], order["ordStatCd"], float(order["totAmt"])) == ("u1", "10", round(expected, 2))
    assert [(line["prodNm"], line["ordQty"]) for line in order["orderItems"]] == [
        (items[0]["prodNm"], 2),
        (items[1]["prodNm"], 1),
    ]

    # The product goes away in the product service; the old order still reads with its name.
    deleted = await pair.product.client.delete(f"/products/{items[0]['prodId']}", headers=pair.admin)
    assert deleted.status_code == 204
    await pair.sync()
    assert (await legacy.client.get(f"/legacy/products/{items[0]['prodId']}")).status_code == 404
    again = await legacy.client.get(f"/legacy/orders/{order['ordNo']}", headers=legacy.auth_headers("u1"))
    assert again.json()["data"] == order

    by_admin = await legacy.client.get(
        f"/legacy/orders/{order['ordNo']}", headers=legacy.auth_headers("a", "admin")
    )
    assert by_admin.status_code == 200
    by_other = await legacy.client.get(f"/legacy/orders/{order['ordNo']}", headers=legacy.auth_headers("u2"))
    assert by_other.status_code == 404


async def test_an_order_for_an_unknown_or_deleted_product_is_refused(pair: Pair) -> None:
    legacy = pair.legacy
    body = {"orderItems": [{"prodId": "nope", "ordQty": 1}]}
    refused = await legacy.client.post("/legacy/orders", json=body, headers=legacy.auth_headers("u1"))
    assert refused.status_code == 422 and refused.json()["error"]["details"] == {"prodIds": ["nope"]}
    bad_bodies: list[dict[str, object]] = [
        {"orderItems": []},
        {"orderItems": [{"prodId": "x", "ordQty": 0}]},
        {"items": []},
    ]
    for bad in bad_bodies:
        answer = await legacy.client.post("/legacy/orders", json=bad, headers=legacy.auth_headers("u1"))
        assert answer.status_code == 422
