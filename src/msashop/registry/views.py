"""The registry's state in Consul's JSON shapes (field names as Consul's API documents them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from msashop.registry.durations import format_duration
from msashop.registry.model import CheckState, ServiceRecord


@dataclass(frozen=True)
class Node:
    """The one node this registry is: every instance is registered on it, as with one Consul agent."""

    name: str = "msashop"
    address: str = "127.0.0.1"
    datacenter: str = "dc1"


def agent_service(record: ServiceRecord, node: Node) -> dict[str, Any]:
    spec = record.spec
    return {
        "ID": spec.id,
        "Service": spec.name,
        "Tags": list(spec.tags),
        "Meta": dict(spec.meta),
        "Port": spec.port,
        "Address": spec.address,
        "Weights": {"Passing": spec.weights[0], "Warning": spec.weights[1]},
        "EnableTagOverride": spec.enable_tag_override,
        "Datacenter": node.datacenter,
    }


def check(state: CheckState, node: Node, record: ServiceRecord | None) -> dict[str, Any]:
    spec = state.spec
    definition: dict[str, Any] = {}
    if spec.kind == "http":
        definition = {
            "HTTP": spec.http,
            "Method": spec.method,
            "Header": {name: list(values) for name, values in spec.header},
            "Interval": format_duration(spec.interval),
            "Timeout": format_duration(spec.timeout),
        }
    else:
        definition = {"TTL": format_duration(spec.ttl)}
    if spec.deregister_after is not None:
        definition["DeregisterCriticalServiceAfter"] = format_duration(spec.deregister_after)
    return {
        "Node": node.name,
        "CheckID": spec.id,
        "Name": spec.name,
        "Status": state.status,
        "Notes": spec.notes,
        "Output": state.output,
        "ServiceID": spec.service_id,
        "ServiceName": record.spec.name if record else "",
        "ServiceTags": list(record.spec.tags) if record else [],
        "Type": spec.kind,
        "Interval": format_duration(spec.interval) if spec.kind == "http" else "",
        "Timeout": format_duration(spec.timeout) if spec.kind == "http" else "",
        "ExposedPort": 0,
        "Definition": definition,
        "CreateIndex": state.create_index,
        "ModifyIndex": state.modify_index,
    }


def node(node: Node, index: int) -> dict[str, Any]:
    return {
        "ID": "",
        "Node": node.name,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": {"lan": node.address, "wan": node.address},
        "Meta": {},
        "CreateIndex": 1,
        "ModifyIndex": index,
    }


def health_entry(record: ServiceRecord, checks: list[CheckState], where: Node) -> dict[str, Any]:
    """One element of `/v1/health/service/<name>`: the node, the instance, its checks."""
    service = agent_service(record, where)
    del service["Datacenter"]
    service.update(CreateIndex=record.create_index, ModifyIndex=record.modify_index)
    return {
        "Node": node(where, 1),
        "Service": service,
        "Checks": [check(c, where, record) for c in checks],
    }


def catalog_entry(record: ServiceRecord, where: Node) -> dict[str, Any]:
    """One element of `/v1/catalog/service/<name>`."""
    spec = record.spec
    return {
        "ID": "",
        "Node": where.name,
        "Address": where.address,
        "Datacenter": where.datacenter,
        "TaggedAddresses": {"lan": where.address, "wan": where.address},
        "NodeMeta": {},
        "ServiceID": spec.id,
        "ServiceName": spec.name,
        "ServiceTags": list(spec.tags),
        "ServiceAddress": spec.address,
        "ServicePort": spec.port,
        "ServiceMeta": dict(spec.meta),
        "ServiceWeights": {"Passing": spec.weights[0], "Warning": spec.weights[1]},
        "ServiceEnableTagOverride": spec.enable_tag_override,
        "CreateIndex": record.create_index,
        "ModifyIndex": record.modify_index,
    }
