"""deploy/grafana/: the dashboard loads, carries the guide's six queries, every expression parses
(promtool, as recording rules) and every metric it reads is one the services export: scraped
from the /metrics of an order, a payment and a registry service running in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.service import Service
from msashop.registry.config import RegistrySettings
from msashop.registry.main import create_service as create_registry
from msashop.services.order.config import OrderSettings
from msashop.services.order.main import create_service as create_order
from msashop.services.payment.config import PaymentSettings
from msashop.services.payment.main import create_service as create_payment
from tests.integration.deploy.promtool import promtool

yaml = pytest.importorskip("yaml")

GRAFANA_DIR = Path(__file__).resolve().parents[3] / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "msashop.json"
# The guide's grafanaQueries, by panel title: what each panel must read.
GUIDE_QUERIES = {
    "Request rate": "rate(http_requests_total",
    "Error rate": "rate(errors_total[5m])",
    "p95 latency": "histogram_quantile(0.95,",
    "Active DB connections": 'database_connection_pool_size{state="active"}',
    "Order rate": "rate(orders_created_total[5m])",
    "Revenue": "rate(order_value_dollars_sum[1h])",
}
# Made by Prometheus itself, not by a service.
SCRAPE_METRICS = {"up"}
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _exprs() -> list[str]:
    return [t["expr"] for p in _dashboard()["panels"] for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    """The metrics a PromQL expression reads: identifiers left once strings, label matchers,
    ranges and grouping clauses are taken out, that are neither functions nor keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[match.end() :].lstrip()[:1]
        if following != "(" and match.group() not in KEYWORDS:
            names.add(match.group())
    return names


def test_metric_names_are_found_in_an_expression() -> None:
    expr = 'sum by (service, le) (rate(x_bucket{route!~"/a|/b"}[5m])) / on(service) y * 3600 + max(z)'
    assert metric_names(expr) == {"x_bucket", "y", "z"}


def test_the_dashboard_has_the_guides_queries_on_the_provisioned_datasource() -> None:
    dashboard = _dashboard()
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    by_title = {p["title"]: p for p in panels}
    for title, query in GUIDE_QUERIES.items():
        assert any(query in t["expr"] for t in by_title[title]["targets"]), title
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])
    [variable] = dashboard["templating"]["list"]
    provisioned = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [datasource] = provisioned["datasources"]
    assert (variable["type"], variable["query"]) == ("datasource", datasource["type"])
    assert variable["current"]["value"] == datasource["uid"]


def test_every_expression_parses(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:expr_{n}", "expr": e} for n, e in enumerate(_exprs())],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    promtool("check", "rules", path)


async def _exported(service: Service) -> set[str]:
    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            text = (await client.get("/metrics")).text
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(family.type, ())
        names |= {family.name + suffix for suffix in suffixes}  # a family without samples yet
    return names


async def test_every_metric_the_dashboard_reads_is_exported(tmp_path: Path) -> None:
    (tmp_path / "ports.json").write_text("{}")
    exported = set()
    exported |= await _exported(
        create_order(OrderSettings.load("order", data_dir=tmp_path), bus=InMemoryBus())
    )
    exported |= await _exported(
        create_payment(PaymentSettings.load("payment", data_dir=tmp_path), bus=InMemoryBus())
    )
    exported |= await _exported(create_registry(RegistrySettings.load("registry", data_dir=tmp_path)))

    read = set().union(*(metric_names(e) for e in _exprs()))
    assert read - exported - SCRAPE_METRICS == set()
    assert "orders_created_total" in read and "database_connection_pool_size" in read
