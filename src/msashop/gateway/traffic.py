"""The traffic file: Istio's VirtualService and DestinationRule fields, per service.

The model (pydantic, validated once per load) mirrors Istio's names so the file reads like the
manifests: `http[].match[].headers`, `route[].destination.subset` + `weight`, `fault.delay`,
`fault.abort`, `trafficPolicy.connectionPool`, `trafficPolicy.outlierDetection`. The gateway
README documents the format. Loading and re-loading the file live in `traffic_file.py`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> Any:
    """`"30s"`, `"500ms"`, `"1.5s"`, `"2m"` (Istio's spelling) or a number of seconds -> seconds."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if not found:
            raise ValueError(f"not a duration: {value!r} (write e.g. 30s, 500ms, 1m)")
        return float(found[1]) * _UNIT_SECONDS[found[2]]
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class _Model(BaseModel):
    # Unknown keys are refused: a typo in a traffic rule must not silently mean "no rule".
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class StringMatch(_Model):
    """Istio's StringMatch: exactly one of exact, prefix, regex (a full match)."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError("give exactly one of exact, prefix, regex")
        if self.regex is not None:
            re.compile(self.regex)
        return self


class RequestMatch(_Model):
    """Istio's HTTPMatchRequest: every condition given must hold. `uri` is the public path."""

    uri: StringMatch | None = None
    method: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _lower_case_names(cls, value: dict[str, StringMatch]) -> dict[str, StringMatch]:
        return {name.lower(): match for name, match in value.items()}


class Destination(_Model):
    host: str | None = None  # a service name; per-service rules may leave it out
    subset: str | None = None  # a version tag (`v1`, `v2`); None: every version


class RouteDestination(_Model):
    destination: Destination = Field(default_factory=Destination)
    weight: int | None = Field(default=None, ge=0)


class Percentage(_Model):
    value: float = Field(default=100.0, ge=0, le=100)


class Delay(_Model):
    fixed_delay: Seconds
    percentage: Percentage = Field(default_factory=Percentage)


class Abort(_Model):
    http_status: int = Field(ge=400, le=599)  # an error: the service is not asked
    percentage: Percentage = Field(default_factory=Percentage)


class Fault(_Model):
    delay: Delay | None = None
    abort: Abort | None = None


class Rewrite(_Model):
    uri: str


class HTTPRoute(_Model):
    """One rule. Rules are tried in order; the first whose `match` holds decides."""

    name: str = ""
    match: list[RequestMatch] = Field(default_factory=list)  # any one may hold; empty: every request
    route: list[RouteDestination] = Field(default_factory=list)  # empty: the service, any version
    rewrite: Rewrite | None = None
    fault: Fault | None = None

    @model_validator(mode="after")
    def _weights(self) -> Self:
        if len(self.route) > 1:
            if any(d.weight is None for d in self.route):
                raise ValueError("with several destinations, give each one a weight")
            if sum(d.weight or 0 for d in self.route) <= 0:
                raise ValueError("the weights add up to 0")
        return self


class TCPSettings(_Model):
    max_connections: int = Field(default=100, ge=1)


class HTTPSettings(_Model):
    http1_max_pending_requests: int = Field(default=10, ge=0)


class ConnectionPool(_Model):
    tcp: TCPSettings = Field(default_factory=TCPSettings)
    http: HTTPSettings = Field(default_factory=HTTPSettings)


class OutlierDetection(_Model):
    # 5xx answers and connection errors both count (Envoy's consecutive_5xx); 0 turns it off.
    consecutive_5xx_errors: int = Field(default=5, ge=0, alias="consecutive5xxErrors")
    base_ejection_time: Seconds = 30.0
    max_ejection_percent: int = Field(default=50, ge=0, le=100)


class TrafficPolicy(_Model):
    connection_pool: ConnectionPool = Field(default_factory=ConnectionPool)
    outlier_detection: OutlierDetection = Field(default_factory=OutlierDetection)


class ServiceTraffic(_Model):
    """One service's VirtualService (`http`) and DestinationRule (`trafficPolicy`)."""

    http: list[HTTPRoute] = Field(default_factory=list)
    # Only what it sets; the rest comes from the file's top-level trafficPolicy.
    traffic_policy: TrafficPolicy | None = None


class TrafficConfig(_Model):
    # Defaults for every service (the guide's DestinationRule values when the file is silent).
    traffic_policy: TrafficPolicy = Field(default_factory=TrafficPolicy)
    # Edge rules, tried before the prefix table: any public path to any service, weighted
    # across services (the strangler fig's "10% of /api/products to the new service").
    http: list[HTTPRoute] = Field(default_factory=list)
    services: dict[str, ServiceTraffic] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _hosts(self) -> Self:
        for rule in self.http:
            if not rule.route or any(d.destination.host is None for d in rule.route):
                raise ValueError(f"edge rule {rule.name or '#'}: every destination needs a host")
        for name, service in self.services.items():
            for rule in service.http:
                if rule.rewrite is not None:
                    raise ValueError(f"services.{name}: rewrite belongs in an edge rule")
                if any(d.destination.host not in (None, name) for d in rule.route):
                    raise ValueError(
                        f"services.{name}: a destination's host must be {name!r}; "
                        "send traffic to another service with an edge rule"
                    )
        return self

    def policy(self, service: str) -> TrafficPolicy:
        """The service's policy: its own settings over the file's defaults, field by field."""
        own = self.services.get(service)
        if own is None or own.traffic_policy is None:
            return self.traffic_policy
        merged = _deep_merge(
            self.traffic_policy.model_dump(by_alias=True, exclude_unset=True),
            own.traffic_policy.model_dump(by_alias=True, exclude_unset=True),
        )
        return TrafficPolicy.model_validate(merged)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
