from decimal import Decimal

import pytest

from msashop.services.product.domain import InvalidProduct, Product
from msashop.services.product.seed import CATALOG


def _product(price: str) -> Product:
    return Product(id="p1", sku="S1", name="n", description="", category="c", price=Decimal(price))


def test_price_must_be_positive() -> None:
    with pytest.raises(InvalidProduct):
        _product("0")


def test_price_has_at_most_two_decimals() -> None:
    with pytest.raises(InvalidProduct):
        _product("1.005")
    assert _product("1.05").price == Decimal("1.05")


def test_seed_catalog_has_thirty_products_in_four_categories_with_stock() -> None:
    assert len(CATALOG) >= 30
    assert len({item["category"] for item in CATALOG}) >= 4
    assert len({item["sku"] for item in CATALOG}) == len(CATALOG)
    assert all(int(item["initial_stock"]) > 0 for item in CATALOG)  # type: ignore[call-overload]
