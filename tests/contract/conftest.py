"""The order service's own test fixtures (its integration tests' fake product service, fake
shipping and `shop`), so the consumer tests here check those doubles against the pacts."""

from tests.integration.order.conftest import products, settings, shop

__all__ = ["products", "settings", "shop"]
