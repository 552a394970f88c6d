"""structlog JSON logs: service, version and instance on every line, the current span's trace and
span ids when there is one; request id, user and message ids ride on context variables."""

from __future__ import annotations

import logging
import sys

import structlog

from msashop.chassis.tracing import add_trace_ids


def configure_logging(
    service: str, version: str = "v1", level: str = "INFO", *, instance_id: str = ""
) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level.upper(), force=True)
    # uvicorn's access log duplicates our request log; keep its errors only.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(
        service=service, version=version, instance_id=instance_id or service
    )
