from msashop.chassis.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    pass
