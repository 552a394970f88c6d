from msashop.chassis.settings import ServiceSettings


class LegacySettings(ServiceSettings):
    """`MSASHOP_LEGACY_*`. The database defaults to `<data-dir>/db/legacy.sqlite`."""
