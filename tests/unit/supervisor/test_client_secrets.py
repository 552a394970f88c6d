"""Client secrets for service tokens: one per service, private, kept across restarts; the user
service is told the hashes, every other process the path of its own secret only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from msashop.services.user.clients import ClientRegistry
from msashop.supervisor import client_secrets
from msashop.supervisor.config import PlatformConfig
from msashop.supervisor.launch import Wiring, child_env, client_secrets_for


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_service_gets_a_private_secret_kept_across_restarts(tmp_path: Path) -> None:
    client_secrets_for(tmp_path, ["registry", "user", "order", "gateway"])
    order = client_secrets.secret_file(tmp_path, "order")
    first = order.read_text()
    assert len(first.strip()) >= 40 and _mode(order) == 0o600
    assert _mode(client_secrets.secrets_dir(tmp_path)) == 0o700
    assert client_secrets.secret_file(tmp_path, "gateway").read_text() != first

    client_secrets_for(tmp_path, ["registry", "user", "order", "gateway", "product"])  # a restart
    assert order.read_text() == first


def test_the_registry_holds_hashes_that_check_each_secret_and_no_secret(tmp_path: Path) -> None:
    path = client_secrets.ensure(tmp_path, ["order", "gateway"])
    text = path.read_text()
    order = client_secrets.secret_file(tmp_path, "order").read_text().strip()
    assert order not in text and _mode(path) == 0o600
    assert sorted(json.loads(text)["clients"]) == ["gateway", "order"]
    registry = ClientRegistry(path)
    assert registry.authenticate("order", order)
    assert not registry.authenticate("gateway", order)  # a secret is its own service's only
    assert registry.audiences() == {"gateway", "order"}


def test_a_process_is_told_its_own_secret_file_and_the_user_service_the_hashes(tmp_path: Path) -> None:
    wiring = Wiring(
        data_dir=tmp_path, ports_file=tmp_path / "ports.json", bus_url="", store_url="", env="test"
    )
    order = child_env("order", 4005, wiring, PlatformConfig(), environ={})
    assert order["MSASHOP_ORDER_CLIENT_SECRET_FILE"] == str(tmp_path / "secrets" / "order.secret")
    assert not any("CLIENTS_FILE" in k for k in order)
    user = child_env("user", 4001, wiring, PlatformConfig(), environ={})
    assert user["MSASHOP_USER_CLIENTS_FILE"] == str(tmp_path / "secrets" / "clients.json")
    assert not any("order" in v for v in user.values())  # no other service's secret
