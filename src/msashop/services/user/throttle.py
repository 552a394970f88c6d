"""Failed logins throttled per account and per client IP, in the store every replica shares.

Counted with the `limits` library (moving window) on Redis/Valkey when `STORE_URL` is set, in
memory otherwise (one process: `msashop up` always gives a store). Only failures count; a success
clears the account's count (a user who mistyped four times is not locked out by the next typo).

The account is the email as given (normalised, hashed so the store holds no addresses), known or
not: an unknown email is throttled exactly like a wrong password, so neither the 401 nor the 429
tells whether an account exists. The check comes before the password hash, so a throttled guess
costs no argon2 work.

A known trade-off: a burst of parallel guesses all pass the check before the first failure is
counted, so it can overshoot by the number in flight (the gateway's login rate limit bounds
bursts). And whoever knows an email can keep its account throttled; the per-IP limit slows that.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from msashop.chassis.errors import UpstreamUnavailable
from msashop.chassis.limits_storage import limits_storage
from msashop.services.user.config import UserSettings

log = structlog.get_logger()
KEY_PREFIX = "msashop-login"


class LoginThrottled(Exception):
    """Too many failures: answer 429 with these numbers."""

    def __init__(self, limit: RateLimitItem, reset_at: float) -> None:
        super().__init__("too many failed logins")
        self.limit = limit
        self.reset_at = reset_at

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))


def storage_for(store_url: str) -> Storage:
    return limits_storage(store_url, KEY_PREFIX)


@dataclass(frozen=True)
class _Counter:
    limit: RateLimitItem
    identifiers: tuple[str, ...]


class LoginThrottle:
    def __init__(self, storage: Storage | None, per_account: RateLimitItem, per_ip: RateLimitItem) -> None:
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage) if storage is not None else None
        self.per_account, self.per_ip = per_account, per_ip

    @classmethod
    def from_settings(cls, settings: UserSettings) -> LoginThrottle:
        storage = storage_for(settings.store_url) if settings.rate_limits else None
        return cls(storage, settings.account_limit, settings.ip_limit)

    @property
    def enabled(self) -> bool:
        return self._limiter is not None

    def _account(self, email: str) -> _Counter:
        digest = hashlib.sha256(email.encode()).hexdigest()[:32]
        return _Counter(self.per_account, ("account", digest))

    def _counters(self, email: str, ip: str) -> list[_Counter]:
        return [self._account(email), _Counter(self.per_ip, ("ip", ip))]

    async def check(self, email: str, ip: str) -> None:
        """Raise LoginThrottled when the account or the IP has used up its failures."""
        if self._limiter is None:
            return
        try:
            for counter in self._counters(email, ip):
                if not await self._limiter.test(counter.limit, *counter.identifiers):
                    stats = await self._limiter.get_window_stats(counter.limit, *counter.identifiers)
                    log.warning("login.throttled", by=counter.identifiers[0], ip=ip)
                    raise LoginThrottled(counter.limit, stats.reset_time)
        except StorageError as exc:
            raise _unavailable(exc) from None

    async def failed(self, email: str, ip: str) -> None:
        if self._limiter is None:
            return
        try:
            for counter in self._counters(email, ip):
                await self._limiter.hit(counter.limit, *counter.identifiers)
        except StorageError as exc:
            raise _unavailable(exc) from None

    async def succeeded(self, email: str) -> None:
        if self._limiter is None:
            return
        counter = self._account(email)
        try:
            await self._limiter.clear(counter.limit, *counter.identifiers)
        except StorageError as exc:
            raise _unavailable(exc) from None


def _unavailable(exc: Exception) -> UpstreamUnavailable:
    # Fail closed: without the counts, guessing would be unlimited.
    log.error("login.throttle_store_down", error=str(exc))
    return UpstreamUnavailable("login is unavailable for a moment; try again")
