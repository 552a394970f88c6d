"""Revoked token ids and sessions, in a store every gateway process and service sees.

The embedded default is the Valkey server `msashop up` starts; Redis works the same.
"""

from __future__ import annotations

import time
from typing import Protocol

import redis.asyncio as redis


class RevocationStore(Protocol):
    async def revoke(self, key: str, ttl_seconds: int) -> None: ...

    async def any_revoked(self, keys: list[str]) -> bool: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class RedisRevocationStore:
    def __init__(self, url: str) -> None:
        self._redis = redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    async def revoke(self, key: str, ttl_seconds: int) -> None:
        await self._redis.set(f"revoked:{key}", b"1", ex=max(1, ttl_seconds))

    async def any_revoked(self, keys: list[str]) -> bool:
        if not keys:
            return False
        return any(v is not None for v in await self._redis.mget([f"revoked:{k}" for k in keys]))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()


class InMemoryRevocationStore:
    """One process only: for unit tests."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def revoke(self, key: str, ttl_seconds: int) -> None:
        self._until[key] = time.time() + ttl_seconds

    async def any_revoked(self, keys: list[str]) -> bool:
        now = time.time()
        return any(self._until.get(k, 0) > now for k in keys)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


def revocation_store(url: str) -> RevocationStore:
    return RedisRevocationStore(url) if url else InMemoryRevocationStore()
