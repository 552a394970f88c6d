"""Per-service settings: environment prefix, platform-wide environment, production safety."""

import pytest
from pydantic import ValidationError

from msashop.chassis.settings import ServiceSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("MSASHOP_"):
            monkeypatch.delenv(name)


def test_settings_read_the_service_prefix_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSASHOP_WIDGET_PORT", "18123")
    monkeypatch.setenv("MSASHOP_WIDGET_BUS_URL", "nats://127.0.0.1:9999")
    monkeypatch.setenv("MSASHOP_OTHER_PORT", "18999")

    settings = ServiceSettings.load("widget")

    assert settings.service_name == "widget"
    assert settings.port == 18123
    assert settings.bus_url == "nats://127.0.0.1:9999"
    assert ServiceSettings.load("other").port == 18999


def test_database_url_and_ports_file_default_to_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("MSASHOP_WIDGET_DATA_DIR", str(tmp_path))

    settings = ServiceSettings.load("widget")

    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'db' / 'widget.sqlite'}"
    assert settings.ports_file == tmp_path / "ports.json"


def test_platform_environment_applies_unless_the_service_sets_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MSASHOP_ENV", "test")
    monkeypatch.setenv("MSASHOP_OTHER_ENV", "development")

    assert ServiceSettings.load("widget").env == "test"
    assert ServiceSettings.load("other").env == "development"


class KeyedSettings(ServiceSettings):
    api_key: str = "dev-key"

    def development_keys(self) -> dict[str, bool]:
        return {**super().development_keys(), "api_key": self.api_key == "dev-key"}


def test_production_refuses_a_development_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSASHOP_ENV", "production")

    with pytest.raises(ValidationError, match="api_key uses a development key"):
        KeyedSettings.load("widget")


def test_production_starts_with_a_real_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSASHOP_ENV", "production")
    monkeypatch.setenv("MSASHOP_WIDGET_API_KEY", "a-real-key-from-the-vault")

    settings = KeyedSettings.load("widget")

    assert settings.env == "production"
    assert not settings.is_development
    assert settings.api_key == "a-real-key-from-the-vault"


def test_development_accepts_the_development_key() -> None:
    settings = KeyedSettings.load("widget")

    assert settings.is_development
    assert settings.api_key == "dev-key"
