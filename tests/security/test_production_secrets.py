"""MSASHOP_ENV=production refuses to start on development secrets, with a message naming what to
set: the user service's auto-generated signing key, and any service (the gateway included)
without a client secret for its service tokens. Secrets come from the environment or files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.service import Service
from msashop.gateway.config import GatewaySettings
from msashop.gateway.main import create_service as create_gateway
from msashop.services.product.config import ProductSettings
from msashop.services.product.main import create_service as create_product
from msashop.services.user.config import UserSettings
from tests.service_harness import running


def test_production_from_the_environment_refuses_the_development_signing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSASHOP_ENV", "production")
    with pytest.raises(ValueError, match="signing_key_file uses a development key"):
        UserSettings.load("user", data_dir=tmp_path)
    monkeypatch.setenv("MSASHOP_USER_SIGNING_KEYS_PEM", "-----BEGIN PRIVATE KEY-----...")
    assert UserSettings.load("user", data_dir=tmp_path).env == "production"  # a given key passes


def product(tmp_path: Path, **settings: object) -> Service:
    return create_product(
        ProductSettings.load("product", env="production", data_dir=tmp_path, **settings), bus=InMemoryBus()
    )


def gateway(tmp_path: Path, **settings: object) -> Service:
    return create_gateway(GatewaySettings.load("gateway", env="production", data_dir=tmp_path, **settings))


@pytest.mark.parametrize("build", [product, gateway], ids=["product", "gateway"])
async def test_production_refuses_to_start_without_a_client_secret(
    tmp_path: Path, build: Callable[[Path], Service]
) -> None:
    service = build(tmp_path)
    with pytest.raises(RuntimeError, match="no client secret"):
        await service.start()


async def test_production_starts_with_a_client_secret_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "product.secret"
    secret.write_text("s3cret-from-a-file\n")
    service = product(tmp_path, client_secret_file=secret)
    async with running(service):
        assert service.tokens is not None
