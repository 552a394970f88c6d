"""Calls to other services over HTTP (aiohttp), resilient: request id and credentials forwarded,
a timeout per attempt, round robin over the healthy instances with the failing ones skipped,
retries of idempotent calls, a circuit breaker and a bulkhead per upstream service.

One call goes: circuit breaker (OPEN: `circuit_open` at once, no retry) -> bulkhead (full:
`bulkhead_full` at once) -> an instance in turn, one this call has not tried yet when there is
one -> the request. An answer that says "not now" or no answer at all is retried on another
instance, for idempotent methods only (see `retries`). Every attempt counts in the breaker:
no answer, a 5xx, a 408 or a 429 is a failure; any other answer, a 4xx included, a success
(the upstream did its job; the caller asked for something wrong).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from tenacity import RetryCallState

from msashop.chassis import context
from msashop.chassis.auth import SERVICE_TOKEN_HEADER
from msashop.chassis.bulkhead import Bulkhead, BulkheadFull
from msashop.chassis.circuit_breaker import BreakerConfig, CircuitBreaker, CircuitOpen, State
from msashop.chassis.client_metrics import (
    circuit_breaker_state,
    upstream_calls_rejected_total,
    upstream_retries_total,
)
from msashop.chassis.client_policy import ClientPolicy
from msashop.chassis.discovery import Discovery as Discovery  # the gateway imports it from here
from msashop.chassis.discovery import Instance
from msashop.chassis.errors import AppError, NotFound, UpstreamUnavailable
from msashop.chassis.http_tracing import client_trace_configs
from msashop.chassis.load_balancer import LoadBalancer
from msashop.chassis.retries import RETRYABLE_STATUSES, NoAnswer, RetryPolicy, parse_retry_after
from msashop.chassis.service_tokens import ServiceTokens

log = structlog.get_logger()

# Answers after which the instance is skipped for a while: it is overloaded or going away.
EJECTING_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    retry_after: float | None


class ServiceClient:
    def __init__(
        self,
        discovery: Discovery,
        *,
        timeout: float = 5.0,
        caller: str = "",
        policy: ClientPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.discovery = discovery
        # mTLS on (chassis/tls.py): https instances are called with our certificate, our CA trusted.
        self.ssl_context = ssl_context
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.caller = caller
        self.policy = policy = policy or ClientPolicy()
        self.balancer = LoadBalancer(
            discovery,
            base_seconds=policy.ejection_base_seconds,
            max_seconds=policy.ejection_max_seconds,
            clock=clock,
        )
        self.retry_policy = RetryPolicy(policy.max_attempts, policy.retry_initial_wait, policy.retry_max_wait)
        self._breaker_config = BreakerConfig(
            window=policy.breaker_window,
            min_calls=policy.breaker_min_calls,
            failure_rate=policy.breaker_failure_rate,
            reset_seconds=policy.breaker_reset_seconds,
            trial_calls=policy.breaker_trial_calls,
        )
        self._clock = clock
        self._sleep = sleep
        self._breakers: dict[str, CircuitBreaker] = {}
        self._bulkheads: dict[str, Bulkhead] = {}
        self._session: aiohttp.ClientSession | None = None
        # Service tokens (chassis/service_tokens.py): set, every call carries one for its upstream.
        self.tokens: ServiceTokens | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # A CLIENT span per call, its traceparent sent along (chassis/http_tracing.py).
            self._session = aiohttp.ClientSession(timeout=self.timeout, trace_configs=client_trace_configs())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # --- per upstream -------------------------------------------------------------------------
    def breaker(self, service: str) -> CircuitBreaker:
        if (found := self._breakers.get(service)) is None:
            found = self._breakers[service] = CircuitBreaker(
                service, self._breaker_config, clock=self._clock, on_change=_export_state
            )
            _export_state(service, State.CLOSED)
        return found

    def bulkhead(self, service: str) -> Bulkhead:
        if (found := self._bulkheads.get(service)) is None:
            found = self._bulkheads[service] = Bulkhead(service, self.policy.bulkhead_max_concurrent)
        return found

    def circuits(self) -> dict[str, str]:
        """{upstream: "CLOSED" | "OPEN" | "HALF_OPEN"} for every upstream called so far."""
        return {name: breaker.state.name for name, breaker in sorted(self._breakers.items())}

    # --- calls --------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"X-Caller": self.caller} if self.caller else {}
        if rid := context.request_id.get():
            headers["X-Request-Id"] = rid
        if auth := context.authorization.get():
            headers["Authorization"] = auth
        return headers

    async def request(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        """Call `service` and return its JSON body; map failures to our error types.

        `service_token=False`: without this service's token (the token request itself).
        """
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        if kwargs.pop("service_token", True) and self.tokens is not None:
            if (token := await self.tokens.get(service)) is not None:
                headers[SERVICE_TOKEN_HEADER] = token
        tried: set[str] = set()

        def count_retry(state: RetryCallState) -> None:
            upstream_retries_total.labels(upstream=service).inc()
            log.info("call.retry", upstream=service, path=path, attempt=state.attempt_number + 1)

        retrying = self.retry_policy.retrying(method, sleep=self._sleep, before_sleep=count_retry)
        try:
            answer: _Answer = await retrying(self._attempt, service, method, path, headers, tried, kwargs)
        except NoAnswer as exc:
            raise UpstreamUnavailable(f"{service} is unavailable") from exc
        except (CircuitOpen, BulkheadFull) as exc:
            upstream_calls_rejected_total.labels(upstream=service, reason=exc.code).inc()
            raise
        return _result(service, answer)

    async def _attempt(
        self,
        service: str,
        method: str,
        path: str,
        headers: dict[str, str],
        tried: set[str],
        kwargs: dict[str, Any],
    ) -> _Answer:
        permit = self.breaker(service).acquire()
        try:
            with self.bulkhead(service).slot():
                instance = self.balancer.pick(service, tried)
                tried.add(instance.id)
                try:
                    answer = await self._send(instance, method, path, headers, kwargs)
                except NoAnswer:
                    permit.failure()
                    self.balancer.failed(instance)
                    raise
                if answer.status >= 500 or answer.status in (408, 429):
                    permit.failure()
                else:
                    permit.success()
                if answer.status in EJECTING_STATUSES:
                    self.balancer.failed(instance)
                elif answer.status < 500:
                    self.balancer.succeeded(instance)
                return answer
        finally:
            permit.release()  # no outcome reported: cancelled, or never sent (no effect otherwise)

    async def _send(
        self, instance: Instance, method: str, path: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> _Answer:
        try:
            async with self._client().request(
                method,
                instance.url + path,
                headers=headers,
                ssl=self.ssl_context or True,
                trace_request_ctx={"service": instance.service},  # names its span (http_tracing)
                **kwargs,
            ) as response:
                if response.status < 400:
                    body = await response.json(content_type=None)
                else:
                    body = await _error_body(response)
                retry_after = None
                if response.status in RETRYABLE_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                return _Answer(response.status, body, retry_after)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "call.failed",
                upstream=instance.service,
                instance=instance.id,
                path=path,
                error=type(exc).__name__,
            )
            raise NoAnswer(f"{instance.id}: {type(exc).__name__}") from exc

    async def get(self, service: str, path: str, **kwargs: Any) -> Any:
        return await self.request(service, "GET", path, **kwargs)

    async def post(self, service: str, path: str, **kwargs: Any) -> Any:
        return await self.request(service, "POST", path, **kwargs)


def _export_state(upstream: str, state: State) -> None:
    circuit_breaker_state.labels(upstream=upstream).set(int(state))


async def _error_body(response: aiohttp.ClientResponse) -> Any:
    """An error answer's JSON body, or None when it is not JSON (a proxy's HTML page)."""
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None


def _result(service: str, answer: _Answer) -> Any:
    if answer.status == 404:
        raise NotFound(_message(answer.body, f"{service} answered 404"))
    if answer.status >= 500:
        raise UpstreamUnavailable(f"{service} answered {answer.status}")
    if answer.status >= 400:
        error = AppError(_message(answer.body, f"{service} answered {answer.status}"))
        error.status_code = answer.status
        raise error
    return answer.body


def _message(body: Any, default: str) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", default))
    return default
