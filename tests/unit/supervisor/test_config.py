from pathlib import Path

import pytest

from msashop.supervisor.config import ConfigError, PlatformConfig, load_config, parse_config


def test_no_file_means_the_embedded_platform(tmp_path: Path) -> None:
    config = load_config(None, default=tmp_path / "msashop.toml")
    assert config == PlatformConfig()
    assert not config.uses_postgres
    assert config.database_url_for("order") == ""


def test_repo_root_file_is_read_when_no_config_is_given(tmp_path: Path) -> None:
    default = tmp_path / "msashop.toml"
    default.write_text('[bus]\nurl = "nats://10.0.0.5:4222"\n')
    config = load_config(None, default=default)
    assert config.bus_url == "nats://10.0.0.5:4222"
    assert config.source == default


def test_database_template_names_one_database_per_service(tmp_path: Path) -> None:
    path = tmp_path / "pg.toml"
    path.write_text('[database]\nurl = "postgresql+asyncpg://shop@127.0.0.1:5432/msashop_{service}"\n')
    config = load_config(path)
    assert config.uses_postgres
    assert config.database_url_for("order") == "postgresql+asyncpg://shop@127.0.0.1:5432/msashop_order"
    assert config.database_url_for("user") == "postgresql+asyncpg://shop@127.0.0.1:5432/msashop_user"
    assert config.bus_url == "" and config.store_url == ""


def test_a_database_url_without_service_placeholder_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\{service\}"):
        parse_config({"database": {"url": "postgresql+asyncpg://u@h/shared"}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"databse": {"url": "x"}}, "unknown section"),
        ({"bus": {"uri": "nats://h:4222"}}, "unknown key 'uri'"),
        ({"bus": {"url": "http://h:5672"}}, "must start with"),
        ({"store": {"url": 6379}}, "must be a string"),
        ({"store": "redis://h"}, "must be a table"),
    ],
)
def test_mistakes_are_reported_not_ignored(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("nats://10.0.0.5:4222", "nats"),
        ("amqp://guest:guest@127.0.0.1:5672/shop", "rabbitmq"),
        ("amqps://u:p@mq.example.com/", "rabbitmq"),
        ("kafka://127.0.0.1:9092", "kafka"),
    ],
)
def test_an_external_broker_url_names_its_backend(url: str, backend: str) -> None:
    config = parse_config({"bus": {"url": url}})
    assert (config.bus_url, config.bus_backend) == (url, backend)


def test_a_backend_and_a_matching_url_may_both_be_given() -> None:
    config = parse_config({"bus": {"backend": "rabbitmq", "url": "amqp://guest:guest@127.0.0.1:5672/"}})
    assert config.bus_backend == "rabbitmq"


@pytest.mark.parametrize("backend", ["nats", "kafka"])
def test_a_backend_without_url_is_started_by_the_supervisor(backend: str) -> None:
    config = parse_config({"bus": {"backend": backend}})
    assert (config.bus_url, config.bus_backend) == ("", backend)


def test_no_bus_section_means_the_embedded_nats() -> None:
    assert parse_config({}).bus_backend == "nats"


@pytest.mark.parametrize(
    ("bus", "message"),
    [
        ({"backend": "pulsar"}, r"backend 'pulsar' is unknown \(known: nats, rabbitmq, kafka\)"),
        ({"backend": 3}, "backend 3 is unknown"),
        ({"backend": "rabbitmq"}, "backend 'rabbitmq' needs a url"),
        ({"backend": "kafka", "url": "nats://h:4222"}, "does not match url"),
    ],
)
def test_a_bus_backend_mistake_is_one_clear_error(bus: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config({"bus": bus})
    assert "\n" not in str(caught.value)


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[bus\nurl=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_the_example_file_parses() -> None:
    example = Path(__file__).parents[3] / "msashop.example.toml"
    assert load_config(example) == PlatformConfig(source=example)
