"""Which rate limits a request counts against, and what the answer says about them (pure, no I/O).

Every request to `/api/*` counts against (CONTRACT "Rate limits"):
- its tier's window (sliding window counter): anonymous requests by client IP, authenticated
  ones by user id, premium ones by user id with the premium allowance. Admins get the premium
  allowance too: they are operators, and an admin page polling a few services must not lock
  them out of the shop they run;
- its burst bucket (token bucket, same key): a burst of `capacity` at once, then the refill rate;
- the window of the service it goes to, when one is configured for that service (per client);
- for `/api/auth/login` and `/api/auth/register`, a stricter window per client IP whoever calls
  (credential stuffing and sign-up spam come with or without a token).

The answer names the most restrictive of them (fewest requests left) in `X-RateLimit-*`; a
refused request names the one that refused it, and `Retry-After` says when it would pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse

from msashop.chassis.auth import Principal
from msashop.chassis.errors import AppError

ANONYMOUS, AUTHENTICATED, PREMIUM_TIER = "anonymous", "authenticated", "premium"
TIERS = (ANONYMOUS, AUTHENTICATED, PREMIUM_TIER)
AUTH_PATHS = frozenset({"/api/auth/login", "/api/auth/register"})
# The roles (CONTRACT) that get the premium allowance.
PREMIUM_ROLES = frozenset({"premium", "admin"})
# The `limit` label of the rejection metric and `details.limit` of a 429.
TIER_LIMIT, BURST_LIMIT, SERVICE_LIMIT, AUTH_LIMIT = "tier", "burst", "service", "auth"

RawHeader = tuple[bytes, bytes]


class RateLimited(AppError):
    status_code, code = 429, "rate_limited"


@dataclass(frozen=True)
class Window:
    """One sliding-window counter a request counts against."""

    limit: str  # TIER_LIMIT, SERVICE_LIMIT or AUTH_LIMIT
    item: RateLimitItem
    identifiers: tuple[str, ...]


@dataclass(frozen=True)
class RequestLimits:
    tier: str
    client: str  # "ip:<address>" or "user:<id>": the tier window's and the bucket's key
    windows: tuple[Window, ...]


class RateLimitPolicy:
    def __init__(
        self,
        tiers: Mapping[str, RateLimitItem],
        auth: RateLimitItem,
        services: Mapping[str, RateLimitItem] | None = None,
    ) -> None:
        missing = set(TIERS) - set(tiers)
        if missing:
            raise ValueError(f"no rate limit for the tiers {sorted(missing)}")
        self.tiers = dict(tiers)
        self.auth = auth
        self.services = dict(services or {})

    @classmethod
    def parse(
        cls, tiers: Mapping[str, str], auth: str, services: Mapping[str, str] | None = None
    ) -> RateLimitPolicy:
        """From `limits` notation ("100/hour", "10 per minute")."""
        return cls(
            {tier: parse(text) for tier, text in tiers.items()},
            parse(auth),
            {name: parse(text) for name, text in (services or {}).items()},
        )

    def limits_for(
        self, path: str, service: str, principal: Principal | None, client_ip: str
    ) -> RequestLimits | None:
        """The counters this request counts against; None for a path that is never limited."""
        if not path.startswith("/api/"):
            return None  # the JWKS, which the fast path also answers; /health never comes here
        tier = tier_of(principal)
        client = f"ip:{client_ip}" if principal is None else f"user:{principal.user_id}"
        windows = [Window(TIER_LIMIT, self.tiers[tier], (tier, client))]
        if (per_service := self.services.get(service)) is not None:
            windows.append(Window(SERVICE_LIMIT, per_service, (service, client)))
        # A trailing slash must not be a way around it.
        if (endpoint := path.rstrip("/")) in AUTH_PATHS:
            windows.append(Window(AUTH_LIMIT, self.auth, (endpoint.rpartition("/")[2], client_ip)))
        return RequestLimits(tier, client, tuple(windows))


def tier_of(principal: Principal | None) -> str:
    if principal is None:
        return ANONYMOUS
    if not PREMIUM_ROLES.isdisjoint(principal.roles):
        return PREMIUM_TIER
    return AUTHENTICATED


@dataclass(frozen=True)
class Quota:
    """One limit's state once this request has been counted (or refused)."""

    limit: str
    amount: int  # requests allowed per window, or the bucket's capacity
    remaining: int
    reset_at: float  # Unix time when the count is back down (window) or the bucket is full
    allowed: bool
    retry_after: float = 0.0  # refused: seconds until a request would pass this limit


@dataclass(frozen=True)
class Decision:
    tier: str
    quotas: tuple[Quota, ...]

    @property
    def allowed(self) -> bool:
        return all(q.allowed for q in self.quotas)

    @property
    def binding(self) -> Quota:
        """The limit the headers describe: the refusing one that clears last; else the one with
        the fewest requests left (the smaller limit on a tie)."""
        refused = [q for q in self.quotas if not q.allowed]
        if refused:
            return max(refused, key=lambda q: q.retry_after)
        return min(self.quotas, key=lambda q: (q.remaining, q.amount))

    @property
    def retry_after(self) -> int:
        """Whole seconds for `Retry-After` (at least 1: "now" would invite a busy loop)."""
        return max(1, math.ceil(self.binding.retry_after))

    def headers(self) -> list[RawHeader]:
        quota = self.binding
        headers = [
            (b"x-ratelimit-limit", str(quota.amount).encode()),
            (b"x-ratelimit-remaining", str(max(0, quota.remaining)).encode()),
            (b"x-ratelimit-reset", str(math.ceil(quota.reset_at)).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return headers

    def refusal(self) -> RateLimited:
        seconds = self.retry_after
        return RateLimited(
            f"too many requests; retry in {seconds} s",
            details={"limit": self.binding.limit, "retry_after_seconds": seconds},
        )
