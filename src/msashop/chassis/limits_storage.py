"""Where the `limits` library keeps its counts: the shared store (Redis/Valkey) every replica and
every gateway process sees, or this process's memory when there is none (`msashop up` always
gives a store, so memory means one process: a unit test or a service run on its own)."""

from __future__ import annotations

from typing import Any

from limits.aio.storage import MemoryStorage, RedisStorage, Storage

# redis-py speaks to Valkey as well; it only knows the Redis schemes.
_SCHEMES = {"valkey": "redis", "valkeys": "rediss"}


def redis_url(store_url: str) -> str:
    """The store URL with a scheme redis-py accepts (`valkey://` -> `redis://`)."""
    scheme, sep, rest = store_url.partition("://")
    return f"{_SCHEMES.get(scheme, scheme)}{sep}{rest}"


def limits_storage(store_url: str, key_prefix: str, **options: Any) -> Storage:
    """`limits` storage on `store_url` (keys under `key_prefix`); in memory when it is empty.

    `options` go to the redis-py client (e.g. `socket_timeout`, `retry`). Store errors are raised as
    `limits.errors.StorageError`, whatever the client library.
    """
    if not store_url:
        return MemoryStorage()
    # `limits` picks its client by scheme; ours is redis-py.
    return RedisStorage(
        f"async+{redis_url(store_url)}",
        implementation="redispy",
        key_prefix=key_prefix,
        wrap_exceptions=True,
        **options,
    )
