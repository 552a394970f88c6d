"""deploy/prometheus/: promtool accepts the configs and the rules, the rules' unit tests pass, and
service discovery finds what it should: every instance in the targets file the supervisor writes,
labelled by service and instance, and in Kubernetes the pods annotated `prometheus.io/scrape`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from msashop.supervisor.ports import write_port_map
from msashop.supervisor.prometheus_targets import write_targets
from tests.integration.deploy.promtool import PROMETHEUS_DIR, promtool

yaml = pytest.importorskip("yaml")

RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / name).read_text())
    return loaded


def _job(config: dict[str, Any], name: str) -> dict[str, Any]:
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == name]
    return job


def _discover(config: dict[str, Any], job: str, root: Path) -> list[dict[str, Any]]:
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    promtool("check", "config", path)
    found: list[dict[str, Any]] = json.loads(
        promtool("check", "service-discovery", "--timeout=2s", path, job).stdout
    )
    return found


def test_the_local_config_is_valid() -> None:
    done = promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert "SUCCESS: 2 rule files found" in done.stdout


def test_the_rules_are_valid_and_their_unit_tests_pass() -> None:
    promtool("check", "rules", *RULES)
    promtool("test", "rules", PROMETHEUS_DIR / "tests" / "rules_test.yml")


def test_every_instance_the_supervisor_writes_is_a_target_with_its_service_and_instance(
    tmp_path: Path,
) -> None:
    ports = tmp_path / "ports.json"
    write_port_map(
        ports,
        {"gateway": "http://127.0.0.1:8000", "product": ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]},
    )
    targets = write_targets(ports, tmp_path)
    config = _load("prometheus.yml")
    config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config["rule_files"]]
    [sd] = _job(config, "msashop")["file_sd_configs"]
    assert sd["files"] == ["../../.msashop/prometheus/targets.json"]  # `msashop up`'s default data dir
    sd["files"] = [str(targets)]

    found = _discover(config, "msashop", tmp_path)

    labels = sorted(
        (t["labels"]["__address__"], t["labels"]["service"], t["labels"]["instance"]) for t in found
    )
    assert labels == [
        ("127.0.0.1:8000", "gateway", "gateway"),
        ("127.0.0.1:9001", "product", "product"),
        ("127.0.0.1:9002", "product", "product-2"),
    ]
    assert {t["labels"]["__metrics_path__"] for t in found} == {"/metrics"}


def _pod(name: str, app: str, annotations: dict[str, str], address: str) -> dict[str, Any]:
    labels = {
        "__meta_kubernetes_pod_name": name,
        "__meta_kubernetes_namespace": "msashop",
        "__meta_kubernetes_pod_label_app": app,
        "__meta_kubernetes_pod_label_version": "v1",
    }
    for key, value in annotations.items():
        labels[f"__meta_kubernetes_pod_annotation_prometheus_io_{key}"] = value
    return {"targets": [address], "labels": labels}


def test_kubernetes_pods_are_scraped_only_when_annotated_on_the_port_and_path_they_name(
    tmp_path: Path,
) -> None:
    config = _load("kubernetes.yml")
    job = _job(config, "kubernetes-pods")
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    # Debian's Prometheus has no Kubernetes discovery: the same relabelling, fed the labels a pod
    # discovery would give, runs on static targets instead.
    job["static_configs"] = [
        _pod("product-7d9f", "product", {"scrape": "true", "port": "8000"}, "10.1.0.5:80"),
        _pod(
            "order-5c2b", "order", {"scrape": "true", "port": "8001", "path": "/internal/metrics"}, "10.1.0.6"
        ),
        _pod("redis-0", "redis", {}, "10.1.0.7:6379"),
        _pod("batch-1", "batch", {"scrape": "false", "port": "9000"}, "10.1.0.8:80"),
    ]
    for rules in RULES:  # as the ConfigMap mounts them: next to the config
        shutil.copy(rules, tmp_path / rules.name)

    found = _discover(config, "kubernetes-pods", tmp_path)

    kept = sorted(
        (
            t["labels"]["__address__"],
            t["labels"]["__metrics_path__"],
            t["labels"]["service"],
            t["labels"]["instance"],
        )
        for t in found
        if t["labels"]
    )
    assert kept == [
        ("10.1.0.5:8000", "/metrics", "product", "product-7d9f"),
        ("10.1.0.6:8001", "/internal/metrics", "order", "order-5c2b"),
    ]
    assert {t["labels"]["namespace"] for t in found if t["labels"]} == {"msashop"}
