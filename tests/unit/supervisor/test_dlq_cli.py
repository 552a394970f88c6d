"""`msashop dlq`: finding the platform, picking services, and clear errors before any dead letter
is touched (the happy path runs against the whole platform in tests/e2e/test_dead_letters.py)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msashop.cli import app
from msashop.supervisor.dlq import DlqError, Platform, _path, find_platform, pick_services
from tests.conftest import free_port

runner = CliRunner()


def port_map(data_dir: Path, urls: dict[str, str]) -> Path:
    data_dir.mkdir(exist_ok=True)
    (data_dir / "ports.json").write_text(json.dumps(urls))
    return data_dir


def test_the_gateway_and_services_come_from_the_port_map(tmp_path: Path) -> None:
    port_map(tmp_path, {"user": "http://u", "notification": "http://n", "gateway": "http://g:1"})
    assert find_platform(tmp_path) == Platform("http://g:1", ("user", "notification"))


def test_no_port_map_or_no_gateway_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DlqError, match="no running platform"):
        find_platform(tmp_path / "missing")
    port_map(tmp_path, {"user": "http://u"})
    with pytest.raises(DlqError, match="names no gateway"):
        find_platform(tmp_path)


def test_service_is_one_of_the_running_ones() -> None:
    platform = Platform("http://g", ("user", "order"))
    assert pick_services(platform, None) == ("user", "order")
    assert pick_services(platform, "order") == ("order",)
    with pytest.raises(DlqError, match="unknown service 'nope'; running: user, order"):
        pick_services(platform, "nope")


def test_ids_are_quoted_into_one_path_segment() -> None:
    assert _path("order", "a/b c", "replay") == "/api/admin/dlq/order/a%2Fb%20c/replay"


def test_replay_needs_an_id_or_all_but_not_both(tmp_path: Path) -> None:
    for args in (["dlq", "replay"], ["dlq", "purge", "x", "--all"]):
        result = runner.invoke(app, [*args, "--data-dir", str(tmp_path)])
        assert result.exit_code == 2 and "give a dead letter id or --all" in result.output


def test_list_without_a_running_platform_or_password_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MSASHOP_ADMIN_PASSWORD", raising=False)
    result = runner.invoke(app, ["dlq", "list", "--data-dir", str(tmp_path), "--admin-password", "x"])
    assert result.exit_code == 1 and "no running platform" in result.output

    port_map(tmp_path, {"gateway": f"http://127.0.0.1:{free_port()}"})
    result = runner.invoke(app, ["dlq", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "MSASHOP_ADMIN_PASSWORD" in result.output

    result = runner.invoke(app, ["dlq", "list", "--data-dir", str(tmp_path), "--admin-password", "x"])
    assert result.exit_code == 1 and "cannot reach the gateway" in result.output
