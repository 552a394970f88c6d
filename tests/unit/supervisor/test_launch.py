from pathlib import Path

import pytest

from msashop.supervisor.config import PlatformConfig
from msashop.supervisor.launch import (
    ADMIN_MARKER,
    START_ORDER,
    Wiring,
    admin_password,
    child_env,
    select,
)

WIRING = Wiring(
    data_dir=Path("/data"),
    ports_file=Path("/data/ports.json"),
    bus_url="nats://127.0.0.1:4333",
    store_url="redis://127.0.0.1:6390/0",
    env="development",
)


def test_services_start_before_the_gateway_in_dependency_order() -> None:
    assert START_ORDER == (
        "traces",  # first: everyone's spans go there (and it stops last)
        "registry",  # first too: everyone registers there
        "user",
        "inventory",
        "payment",
        "notification",
        "shipping",
        "legacy",  # before product: its catalog copy needs the seed events
        "product",
        "order",
        "gateway",
    )
    assert select(["gateway", "product"]) == ("product", "gateway")
    assert select(None) == START_ORDER
    with pytest.raises(ValueError, match="unknown component"):
        select(["billing"])


def test_each_child_gets_its_own_prefixed_settings() -> None:
    env = child_env("order", 4005, WIRING, PlatformConfig(), environ={})
    assert env == {
        "MSASHOP_ORDER_PORT": "4005",
        "MSASHOP_ORDER_PORTS_FILE": "/data/ports.json",
        "MSASHOP_ORDER_INSTANCE_ID": "order",
        "MSASHOP_ORDER_DATA_DIR": "/data",
        "MSASHOP_ORDER_BUS_URL": "nats://127.0.0.1:4333",
        "MSASHOP_ORDER_STORE_URL": "redis://127.0.0.1:6390/0",
        "MSASHOP_ORDER_ENV": "development",
        "MSASHOP_ORDER_CLIENT_SECRET_FILE": "/data/secrets/order.secret",  # its own, nobody else's
    }


def test_config_database_template_goes_to_services_but_not_the_gateway() -> None:
    config = PlatformConfig(database_url="postgresql+asyncpg://u@h:5432/msashop_{service}")
    env = child_env("payment", 4003, WIRING, config, environ={})
    assert env["MSASHOP_PAYMENT_DATABASE_URL"] == "postgresql+asyncpg://u@h:5432/msashop_payment"
    assert not any(k.endswith("DATABASE_URL") for k in child_env("gateway", 8000, WIRING, config, {}))


def test_environment_overrides_backends_but_never_the_port() -> None:
    environ = {"MSASHOP_ORDER_BUS_URL": "nats://elsewhere:4222", "MSASHOP_ORDER_PORT": "1"}
    env = child_env("order", 4005, WIRING, PlatformConfig(), environ)
    assert "MSASHOP_ORDER_BUS_URL" not in env  # the inherited variable wins
    assert env["MSASHOP_ORDER_PORT"] == "4005"


def test_first_run_generates_an_admin_password(tmp_path: Path) -> None:
    first = admin_password(tmp_path, environ={})
    assert first.generated and first.value and len(first.value) >= 16
    assert admin_password(tmp_path, environ={}).value != first.value


def test_later_runs_leave_the_admin_alone(tmp_path: Path) -> None:
    (tmp_path / ADMIN_MARKER).write_text("admin@msashop.local\n")
    later = admin_password(tmp_path, environ={})
    assert later.value is None and not later.generated


def test_the_environment_password_always_wins(tmp_path: Path) -> None:
    (tmp_path / ADMIN_MARKER).write_text("admin@msashop.local\n")
    given = admin_password(tmp_path, environ={"MSASHOP_ADMIN_PASSWORD": "s3cret-pass"})
    assert given.value == "s3cret-pass" and not given.generated


def test_waves_keep_dependency_order_and_cover_every_component() -> None:
    from msashop.supervisor.launch import waves

    all_waves = waves(START_ORDER)
    assert [n for wave in all_waves for n in wave] == list(START_ORDER)
    assert all_waves[-1] == ("gateway",)
    # every consumer of product.created is ready before product seeds the catalog
    before_product = {
        n for wave in all_waves[: [("product" in w) for w in all_waves].index(True)] for n in wave
    }
    assert {"inventory", "notification"} <= before_product
    assert waves(("product", "gateway")) == [("product",), ("gateway",)]


def test_children_get_the_registry_and_the_services_to_watch_but_the_registry_itself_does_not() -> None:
    from msashop.supervisor.config import PlatformConfig
    from msashop.supervisor.launch import Wiring, child_env

    wiring = Wiring(
        data_dir=Path("/data"),
        ports_file=Path("/data/ports.json"),
        bus_url="nats://x",
        store_url="redis://y",
        env="test",
        registry_url="http://127.0.0.1:8500",
        discover=("user", "product"),
    )
    config = PlatformConfig(versions={"product-3": "v2"})
    product3 = child_env("product", 1234, wiring, config, {}, instance="product-3")
    assert product3["MSASHOP_PRODUCT_REGISTRY_URL"] == "http://127.0.0.1:8500"
    assert product3["MSASHOP_PRODUCT_DISCOVER_SERVICES"] == "user,product"
    assert (product3["MSASHOP_PRODUCT_INSTANCE_ID"], product3["MSASHOP_PRODUCT_VERSION"]) == (
        "product-3",
        "v2",
    )
    assert "MSASHOP_PRODUCT_VERSION" not in child_env("product", 1, wiring, config, {}, instance="product")
    assert "MSASHOP_REGISTRY_REGISTRY_URL" not in child_env("registry", 1, wiring, config, {})
