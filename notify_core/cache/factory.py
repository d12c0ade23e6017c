"""Builds the cache, pub/sub and presence backends from the configuration."""

from __future__ import annotations

from notify_core.cache.base import CacheBackends
from notify_core.cache.memory import MemoryBackends
from notify_core.cache.redis import RedisBackends


def create_cache_backends(redis_url: str | None, namespace: str) -> CacheBackends:
    """Redis at ``redis_url`` (shared by every node), or this process's memory when it is
    ``None`` (one node only). Does no I/O: ``await backends.ping()`` to check Redis."""
    if redis_url is None:
        return MemoryBackends()
    return RedisBackends(redis_url, namespace)
