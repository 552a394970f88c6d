import pytest

from msashop.supervisor import replicas
from msashop.supervisor.config import ConfigError, parse_config


def test_parse_and_check() -> None:
    assert replicas.parse("product=3, order=2,") == {"product": 3, "order": 2}
    assert replicas.check({"product": 3}, ("product", "gateway")) == {"product": 3}
    for bad in ("product", "product=x", "=3"):
        with pytest.raises(replicas.ReplicasError):
            replicas.check(replicas.parse(bad), ("product",))
    with pytest.raises(replicas.ReplicasError, match="runs once"):
        replicas.check({"gateway": 2}, ("product", "gateway"))
    with pytest.raises(replicas.ReplicasError, match=r"1\.\.16"):
        replicas.check({"product": 17}, ("product",))


def test_instance_names_keep_the_first_as_the_service() -> None:
    assert replicas.instance_names("product", 3) == ["product", "product-2", "product-3"]
    assert replicas.instance_names("order", 1) == ["order"]


def test_config_file_replicas_table() -> None:
    assert parse_config({"replicas": {"product": 3}}).replicas == {"product": 3}
    with pytest.raises(ConfigError, match="replicas"):
        parse_config({"replicas": {"product": "three"}})
