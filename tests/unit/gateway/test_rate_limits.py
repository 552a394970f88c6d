"""The gateway's rate limits: which counters a request uses, what the answer says, the burst
bucket's arithmetic, the off switch, and the fallback to memory while the store is down."""

from __future__ import annotations

import json

import pytest
from limits import parse
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from msashop.chassis.auth import Principal
from msashop.chassis.errors import error_body
from msashop.gateway.config import GatewaySettings
from msashop.gateway.rate_limiter import Counters, RateLimiter, error_headers, memory_counters, with_headers
from msashop.gateway.rate_limits import (
    ANONYMOUS,
    AUTH_LIMIT,
    AUTHENTICATED,
    BURST_LIMIT,
    PREMIUM_TIER,
    SERVICE_LIMIT,
    TIER_LIMIT,
    Decision,
    Quota,
    RateLimited,
    RateLimitPolicy,
    RequestLimits,
)
from msashop.gateway.token_bucket import MemoryBuckets, Take, refill_and_take

POLICY = RateLimitPolicy.parse(
    {ANONYMOUS: "100/hour", AUTHENTICATED: "1000/hour", PREMIUM_TIER: "10000/hour"},
    "10/minute",
    {"payment": "60/hour"},
)
ALICE = Principal(user_id="u-alice", roles=("customer",))


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- which counters a request counts against -------------------------------------------------


def test_anonymous_requests_count_by_client_ip() -> None:
    limits = POLICY.limits_for("/api/products", "product", None, "203.0.113.7")
    assert limits is not None
    assert limits.tier == ANONYMOUS and limits.client == "ip:203.0.113.7"
    [window] = limits.windows
    assert (window.limit, window.item, window.identifiers) == (
        TIER_LIMIT,
        parse("100/hour"),
        (ANONYMOUS, "ip:203.0.113.7"),
    )


def test_a_user_counts_by_id_whatever_address_they_come_from() -> None:
    here = POLICY.limits_for("/api/orders", "order", ALICE, "203.0.113.7")
    there = POLICY.limits_for("/api/orders", "order", ALICE, "198.51.100.1")
    assert here == there
    assert here is not None and here.tier == AUTHENTICATED and here.client == "user:u-alice"
    assert here.windows[0].item == parse("1000/hour")


@pytest.mark.parametrize("roles", [("customer", "premium"), ("customer", "admin")])
def test_premium_and_admin_accounts_get_the_premium_allowance(roles: tuple[str, ...]) -> None:
    limits = POLICY.limits_for("/api/orders", "order", Principal(user_id="u1", roles=roles), "10.0.0.1")
    assert limits is not None and limits.tier == PREMIUM_TIER
    assert limits.windows[0].item == parse("10000/hour")


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/register", "/api/auth/login/"])
def test_login_and_register_have_a_stricter_limit_per_ip_whoever_calls(path: str) -> None:
    for principal in (None, ALICE):
        limits = POLICY.limits_for(path, "user", principal, "203.0.113.7")
        assert limits is not None
        auth = [w for w in limits.windows if w.limit == AUTH_LIMIT]
        assert len(auth) == 1 and auth[0].item == parse("10/minute")
        assert auth[0].identifiers[1] == "203.0.113.7"
    login = POLICY.limits_for("/api/auth/login", "user", None, "1.2.3.4")
    register = POLICY.limits_for("/api/auth/register", "user", None, "1.2.3.4")
    assert login is not None and register is not None
    assert login.windows[-1].identifiers != register.windows[-1].identifiers  # one count each


def test_other_auth_paths_have_only_the_tier_limit() -> None:
    limits = POLICY.limits_for("/api/auth/refresh", "user", None, "1.2.3.4")
    assert limits is not None and [w.limit for w in limits.windows] == [TIER_LIMIT]


def test_a_service_with_its_own_limit_adds_a_window_per_client() -> None:
    paying = POLICY.limits_for("/api/payments/p1", "payment", ALICE, "1.2.3.4")
    browsing = POLICY.limits_for("/api/products", "product", ALICE, "1.2.3.4")
    assert paying is not None and browsing is not None
    assert [w.limit for w in paying.windows] == [TIER_LIMIT, SERVICE_LIMIT]
    assert paying.windows[1].item == parse("60/hour")
    assert paying.windows[1].identifiers == ("payment", "user:u-alice")
    assert [w.limit for w in browsing.windows] == [TIER_LIMIT]


def test_paths_outside_api_are_never_limited() -> None:
    assert POLICY.limits_for("/.well-known/jwks.json", "user", None, "1.2.3.4") is None


def test_every_tier_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="premium"):
        RateLimitPolicy({ANONYMOUS: parse("1/hour"), AUTHENTICATED: parse("1/hour")}, parse("1/hour"))


# --- what the answer says ----------------------------------------------------------------------


def _quota(limit: str, amount: int, remaining: int, *, allowed: bool = True, retry: float = 0.0) -> Quota:
    return Quota(limit, amount, remaining, 2_000_000.4, allowed, retry)


def test_the_headers_name_the_limit_with_the_fewest_requests_left() -> None:
    decision = Decision(ANONYMOUS, (_quota(BURST_LIMIT, 100, 99), _quota(TIER_LIMIT, 100, 42)))
    assert decision.allowed
    assert decision.headers() == [
        (b"x-ratelimit-limit", b"100"),
        (b"x-ratelimit-remaining", b"42"),
        (b"x-ratelimit-reset", b"2000001"),  # Unix seconds, rounded up
    ]


def test_a_tie_names_the_smaller_limit() -> None:
    decision = Decision(AUTHENTICATED, (_quota(TIER_LIMIT, 1000, 5), _quota(BURST_LIMIT, 100, 5)))
    assert decision.binding.limit == BURST_LIMIT


def test_a_refusal_names_the_limit_that_refused_and_when_to_retry() -> None:
    decision = Decision(
        ANONYMOUS,
        (
            _quota(BURST_LIMIT, 100, 0, allowed=False, retry=0.05),
            _quota(TIER_LIMIT, 100, 0, allowed=False, retry=1800.2),
            _quota(AUTH_LIMIT, 10, 3),
        ),
    )
    assert not decision.allowed
    headers = dict(decision.headers())
    assert headers[b"retry-after"] == b"1801"
    assert headers[b"x-ratelimit-limit"] == b"100" and headers[b"x-ratelimit-remaining"] == b"0"
    error = decision.refusal()
    assert isinstance(error, RateLimited) and error.status_code == 429
    assert error_body(error.code, error.message, error.details) == {
        "error": {
            "code": "rate_limited",
            "message": "too many requests; retry in 1801 s",
            "details": {"limit": TIER_LIMIT, "retry_after_seconds": 1801},
        }
    }


def test_retry_after_is_never_zero() -> None:
    decision = Decision(ANONYMOUS, (_quota(BURST_LIMIT, 100, 0, allowed=False, retry=0.01),))
    assert decision.retry_after == 1


async def test_the_headers_join_the_answer_unless_the_service_sent_its_own() -> None:
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    ours = [(b"x-ratelimit-limit", b"100")]
    wrapped = with_headers(send, ours)
    await wrapped({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x")]})
    await wrapped({"type": "http.response.body", "body": b"{}"})
    await wrapped({"type": "http.response.start", "status": 429, "headers": [(b"X-RateLimit-Limit", b"5")]})
    assert sent[0]["headers"] == [(b"content-type", b"x"), (b"x-ratelimit-limit", b"100")]
    assert sent[1] == {"type": "http.response.body", "body": b"{}"}
    assert sent[2]["headers"] == [(b"X-RateLimit-Limit", b"5")]  # the service's own limit answered


# --- the burst bucket's arithmetic (the Lua script mirrors it; both run one suite in
# tests/integration/gateway/test_token_bucket_redis.py) ----------------------------------------


def test_a_new_bucket_is_full() -> None:
    assert refill_and_take(None, None, 50.0, 100, 10.0) == (True, 99.0, 50.0)


def test_an_empty_bucket_refuses_until_a_token_has_dripped_in() -> None:
    assert refill_and_take(0.0, 50.0, 50.05, 100, 10.0)[:2] == (False, pytest.approx(0.5))
    assert refill_and_take(0.0, 50.0, 50.1, 100, 10.0)[:2] == (True, pytest.approx(0.0))


def test_a_bucket_never_holds_more_than_its_capacity() -> None:
    assert refill_and_take(3.0, 0.0, 10_000.0, 100, 10.0) == (True, 99.0, 10_000.0)


def test_a_clock_that_went_back_refills_nothing() -> None:
    assert refill_and_take(5.0, 100.0, 90.0, 100, 10.0) == (True, 4.0, 100.0)


async def test_memory_buckets_allow_a_burst_then_the_refill_rate() -> None:
    clock = Clock()
    buckets = MemoryBuckets(5, 2.0, clock)
    takes = [await buckets.take("ip:a") for _ in range(6)]
    assert [t.allowed for t in takes] == [True] * 5 + [False]
    assert takes[5].retry_after == pytest.approx(0.5)
    assert (await buckets.take("ip:b")).allowed  # another client, another bucket
    clock.now += 0.5
    assert (await buckets.take("ip:a")).allowed
    assert not (await buckets.take("ip:a")).allowed


def test_a_take_says_when_the_bucket_is_full_again() -> None:
    take = Take(True, 90.0, 100, 10.0, now=1000.0)
    assert (take.remaining, take.reset_at, take.retry_after) == (90, 1001.0, 0.0)


async def test_memory_buckets_forget_the_full_ones_when_they_grow_large(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MemoryBuckets, "PRUNE_AT", 3)
    clock = Clock()
    buckets = MemoryBuckets(10, 1.0, clock)
    for client in ("a", "b", "c"):
        await buckets.take(client)
    clock.now += 10  # all three are full again
    await buckets.take("d")
    assert set(buckets._buckets) == {"d"}


# --- settings and the off switch ---------------------------------------------------------------


def test_limits_are_configurable_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSASHOP_GATEWAY_RATE_LIMIT_ANONYMOUS", "30/minute")
    monkeypatch.setenv("MSASHOP_GATEWAY_RATE_LIMIT_SERVICES", json.dumps({"payment": "5/hour"}))
    settings = GatewaySettings.load("gateway")
    assert settings.rate_limit_anonymous == "30/minute"
    assert settings.rate_limit_services == {"payment": "5/hour"}
    with pytest.raises(ValidationError, match="rate_limit_premium"):
        GatewaySettings.load("gateway", rate_limit_premium="lots")
    with pytest.raises(ValidationError, match="rate_limit_services"):
        GatewaySettings.load("gateway", rate_limit_services={"payment": "often"})


def test_the_defaults_are_the_issues_numbers() -> None:
    settings = GatewaySettings.load("gateway")
    assert (
        settings.rate_limit_anonymous,
        settings.rate_limit_authenticated,
        settings.rate_limit_premium,
    ) == (
        "100/hour",
        "1000/hour",
        "10000/hour",
    )
    assert (settings.burst_capacity, settings.burst_refill_per_second) == (100, 10.0)


def test_msashop_rate_limits_off_turns_every_limit_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RateLimiter.from_settings(GatewaySettings.load("gateway")) is not None
    monkeypatch.setenv("MSASHOP_RATE_LIMITS", "off")
    assert RateLimiter.from_settings(GatewaySettings.load("gateway")) is None


# --- counting, and the store going away --------------------------------------------------------


def _limiter(
    shared: Counters | None = None, clock: Clock | None = None, anonymous: str = "3/hour"
) -> RateLimiter:
    policy = RateLimitPolicy.parse(
        {ANONYMOUS: anonymous, AUTHENTICATED: "5/hour", PREMIUM_TIER: "9/hour"}, "2/minute"
    )
    return RateLimiter(policy, memory_counters(100, 10.0), shared, clock=clock or Clock())


def _scope(path: str = "/api/products", ip: str = "203.0.113.9") -> dict[str, object]:
    return {"type": "http", "path": path, "client": (ip, 5000)}


async def _noop(message: object) -> None:
    return None


async def test_the_fourth_anonymous_request_of_three_an_hour_is_refused_with_the_headers() -> None:
    limiter = _limiter()
    remaining = []
    for _ in range(3):
        scope = _scope()
        await limiter.enforce(scope, "product", None, _noop)
        headers = error_headers(scope)
        assert headers is not None and headers["x-ratelimit-limit"] == "3"
        remaining.append(headers["x-ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    scope = _scope()
    with pytest.raises(RateLimited) as refused:
        await limiter.enforce(scope, "product", None, _noop)
    assert refused.value.details["limit"] == TIER_LIMIT
    headers = error_headers(scope)
    assert headers is not None and int(headers["retry-after"]) >= 1
    # Another address has its own count.
    await limiter.enforce(_scope(ip="198.51.100.1"), "product", None, _noop)


async def test_the_login_limit_refuses_before_the_tier_limit() -> None:
    limiter = _limiter(anonymous="10/hour")
    for _ in range(2):
        await limiter.enforce(_scope("/api/auth/login"), "user", None, _noop)
    with pytest.raises(RateLimited) as refused:
        await limiter.enforce(_scope("/api/auth/login"), "user", None, _noop)
    assert refused.value.details["limit"] == AUTH_LIMIT
    await limiter.enforce(_scope("/api/products"), "product", None, _noop)  # the tier has room


async def test_an_unlimited_path_is_answered_as_it_is() -> None:
    scope = _scope("/.well-known/jwks.json")
    assert await _limiter().enforce(scope, "user", None, _noop) is _noop
    assert error_headers(scope) is None


class DownBuckets:
    """A store that refuses connections."""

    capacity, refill_per_second = 100, 10.0

    def __init__(self) -> None:
        self.calls = 0
        self.down = True

    async def take(self, key: str) -> Take:
        self.calls += 1
        if self.down:
            raise RedisConnectionError("Connection refused")
        return Take(True, 99.0, 100, 10.0, now=0.0)


async def test_while_the_store_is_down_the_process_memory_counts_and_nothing_fails() -> None:
    clock = Clock()
    store = DownBuckets()
    shared = memory_counters(100, 10.0)()
    shared.buckets = store
    limiter = _limiter(shared, clock)
    for _ in range(3):
        await limiter.enforce(_scope(), "product", None, _noop)  # allowed: counted in memory
    with pytest.raises(RateLimited):  # still bounded
        await limiter.enforce(_scope(), "product", None, _noop)
    assert store.calls == 1  # tried once, then left alone for a while
    clock.now += 5.0
    store.down = False
    decision = await limiter.decide(_request_limits())
    assert store.calls == 2 and decision.allowed
    # Back to the store, memory starts afresh (what it counted is not in the store).
    stats = await limiter.local.windows.get_window_stats(parse("3/hour"), ANONYMOUS, "ip:203.0.113.9")
    assert stats.remaining == 3


def _request_limits() -> RequestLimits:
    limits = _limiter().policy.limits_for("/api/products", "product", None, "203.0.113.9")
    assert limits is not None
    return limits
