"""The gateway sends /api/traces to the trace store, which is not a service the platform's health
or OpenAPI document count."""

from msashop.gateway.openapi import public_services
from msashop.gateway.routes import SERVICES, Target, resolve


def test_api_traces_goes_to_the_trace_store() -> None:
    assert resolve("/api/traces") == Target("traces", "/traces")
    assert resolve("/api/traces/0af7651916cd43dd8448eb211c80319c") == Target(
        "traces", "/traces/0af7651916cd43dd8448eb211c80319c"
    )


def test_the_trace_store_is_not_a_service() -> None:
    assert "traces" not in SERVICES
    assert "traces" not in public_services()
