from msashop.chassis.settings import ServiceSettings


class ProductSettings(ServiceSettings):
    seed_catalog: bool = True
