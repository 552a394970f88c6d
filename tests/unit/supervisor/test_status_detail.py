"""`msashop status` shows each /ready check's status and time, and why a failing one fails."""

import json

from msashop.supervisor.status import _detail


def test_a_ready_report_is_shown_check_by_check() -> None:
    body = {
        "status": "down",
        "checks": {
            "database": {"status": "up", "response_time_ms": 1.2},
            "broker": {"status": "down", "response_time_ms": 2001.0, "error": "no answer within 2 s"},
        },
    }
    assert _detail(503, json.dumps(body)) == (
        "database: up (1.2 ms), broker: down (2001.0 ms): no answer within 2 s"
    )


def test_the_gateway_health_and_other_bodies_still_read() -> None:
    assert _detail(200, json.dumps({"status": "ok", "services": {"user": "ok"}})) == "user: ok"
    assert _detail(503, "not json") == "HTTP 503"
