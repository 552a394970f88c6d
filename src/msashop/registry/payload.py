"""Registration bodies, read the way Consul reads them: field names in any case, snake_case too.

Consul decodes JSON with Go's case-insensitive matching and also accepts snake_case names, so
py-consul's `{"name": ..., "checks": [{"http": ..., "interval": ...}]}` and the documented
`{"Name": ..., "Check": {"HTTP": ..., "Interval": ...}}` mean the same.
"""

from __future__ import annotations

from typing import Any

from msashop.registry.durations import parse_duration
from msashop.registry.model import STATUSES, CheckSpec, ServiceSpec, Status, default_check_id

_UNSUPPORTED = (
    "args",
    "script",
    "tcp",
    "udp",
    "grpc",
    "h2ping",
    "dockercontainerid",
    "osservice",
    "aliasnode",
)


class InvalidRequest(ValueError):
    """The body is not a registration the registry accepts (answered with 400)."""


def _fields(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    return {key.lower().replace("_", ""): value for key, value in raw.items()}


def _duration(fields: dict[str, Any], key: str) -> float | None:
    try:
        return parse_duration(fields.get(key))
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"{key}: {exc}") from None


def _status(fields: dict[str, Any]) -> Status | None:
    value = fields.get("status")
    if value in (None, ""):
        return None
    if value not in STATUSES:
        raise InvalidRequest(f"Status must be one of {', '.join(STATUSES)}")
    return value  # type: ignore[no-any-return]


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{what} must be a list of strings")
    return tuple(value)


def check_spec(
    raw: Any, *, check_id: str, name: str, service_id: str = "", min_interval: float = 1.0
) -> tuple[CheckSpec, Status | None]:
    """One check definition; `check_id` and `name` apply when the body names none.

    Returns the spec and the initial status the body asks for (None: keep the current one, or
    critical for a new check, as Consul does).
    """
    fields = _fields(raw, "a check")
    if any(fields.get(key) for key in _UNSUPPORTED):
        raise InvalidRequest("only HTTP and TTL checks are supported by this registry")
    ttl = _duration(fields, "ttl")
    http = fields.get("http") or ""
    if bool(ttl) == bool(http):
        raise InvalidRequest("a check needs exactly one of HTTP (with Interval) or TTL")
    header = fields.get("header") or {}
    if not isinstance(header, dict):
        raise InvalidRequest("Header must map names to lists of values")
    interval = _duration(fields, "interval")
    timeout = _duration(fields, "timeout")
    spec = CheckSpec(
        id=str(fields.get("checkid") or fields.get("id") or check_id),
        name=str(fields.get("name") or name),
        kind="ttl" if ttl else "http",
        service_id=str(service_id or fields.get("serviceid") or ""),
        http=str(http),
        method=str(fields.get("method") or "GET").upper(),
        header=tuple(sorted((str(k), _strings(v, "a header's values")) for k, v in header.items())),
        # Consul requires an Interval for HTTP checks; the platform's default (10 s) applies
        # instead, and like Consul nothing runs more often than the minimum interval.
        interval=max(interval or 10.0, min_interval) if http else 0.0,
        timeout=(timeout or 5.0) if http else 0.0,
        ttl=ttl or 0.0,
        deregister_after=_duration(fields, "deregistercriticalserviceafter"),
        notes=str(fields.get("notes") or ""),
    )
    return spec, _status(fields)


def service_registration(
    raw: Any, *, min_interval: float = 1.0
) -> tuple[ServiceSpec, list[tuple[CheckSpec, Status | None]]]:
    """A service registration body: the instance and its checks (Check and/or Checks)."""
    fields = _fields(raw, "the registration")
    name = fields.get("name") or fields.get("service")
    if not name or not isinstance(name, str):
        raise InvalidRequest("Missing service name")
    port = fields.get("port") or 0
    meta = fields.get("meta") or {}
    weights = _fields(fields.get("weights") or {}, "Weights")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidRequest("Port must be an integer in 0..65535")
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise InvalidRequest("Meta must map names to strings")
    spec = ServiceSpec(
        id=str(fields.get("id") or name),
        name=name,
        tags=_strings(fields.get("tags"), "Tags"),
        address=str(fields.get("address") or ""),
        port=port,
        meta=tuple(sorted((str(k), v) for k, v in meta.items())),
        weights=(int(weights.get("passing", 1)), int(weights.get("warning", 1))),
        enable_tag_override=bool(fields.get("enabletagoverride")),
    )
    raw_checks = list(fields.get("checks") or [])
    if fields.get("check"):
        raw_checks.insert(0, fields["check"])
    checks = [
        check_spec(
            raw_check,
            check_id=default_check_id(spec.id, n, len(raw_checks)),
            name=f"Service '{spec.name}' check",
            service_id=spec.id,
            min_interval=min_interval,
        )
        for n, raw_check in enumerate(raw_checks, start=1)
    ]
    return spec, checks


def check_registration(raw: Any, *, min_interval: float = 1.0) -> tuple[CheckSpec, Status | None]:
    """`PUT /v1/agent/check/register`: a named check, on a service (ServiceID) or on the node."""
    name = _fields(raw, "a check").get("name")
    if not name or not isinstance(name, str):
        raise InvalidRequest("Missing check name")
    return check_spec(raw, check_id=name, name=name, min_interval=min_interval)


def check_update(raw: Any) -> tuple[Status, str]:
    """`PUT /v1/agent/check/update/<id>`: {"Status": ..., "Output": ...}."""
    fields = _fields(raw, "the update")
    status = _status(fields)
    if status is None:
        raise InvalidRequest("Status is required")
    return status, str(fields.get("output") or "")
