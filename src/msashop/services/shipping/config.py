from decimal import Decimal

from msashop.chassis.settings import ServiceSettings


class ShippingSettings(ServiceSettings):
    # Domestic orders whose items cost at least this ship free (standard service).
    free_shipping_over: Decimal = Decimal("50.00")
    # The one currency rates are set in; a request in another is refused.
    currency: str = "USD"
