"""The sliding-window rate limiter on Redis: one Lua script, so a check and its count are
one atomic step across every node.

The script does the sums of :func:`notify_core.ratelimit.check` on a sorted set of send
instants: drop what left the window, count, and either add this send or answer when the
oldest send that blocks it leaves. Without an explicit ``now`` it uses Redis's own clock
(``TIME``), so every node counts on one clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from notify_core.errors import CacheUnavailable
from notify_core.ratelimit import Limit, Verdict

_SCRIPT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
  return {1, '0', limit - count - 1}
end
local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
return {0, tostring(tonumber(oldest[2]) + window - now), 0}
"""


class RedisRateLimiter:
    """``RateLimiter`` shared by every node on one Redis."""

    def __init__(self, client: aioredis.Redis, where: str) -> None:
        self._client = client
        self._script = client.register_script(_SCRIPT)
        self._where = where

    async def hit(self, key: str, rule: Limit, now: float | None = None) -> Verdict:
        try:
            answer = await self._script(keys=[key], args=_args(rule, now))
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"Redis at {self._where}: rate limit failed: {exc}") from exc
        return _verdict(answer)

    async def hit_many(
        self, items: Sequence[tuple[str, Limit]], now: float | None = None
    ) -> list[Verdict]:
        """Every script call in one pipeline: one round trip however many sends."""
        if not items:
            return []
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, rule in items:
                    await self._script(keys=[key], args=_args(rule, now), client=pipe)
                answers = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"Redis at {self._where}: rate limit failed: {exc}") from exc
        return [_verdict(a) for a in answers]


def _args(rule: Limit, now: float | None) -> list[str | int]:
    return ["" if now is None else repr(now), repr(rule.window), rule.limit, uuid.uuid4().hex]


def _verdict(answer: list[Any]) -> Verdict:
    allowed, retry_after, remaining = answer
    return Verdict(bool(allowed), max(0.0, float(retry_after)), int(remaining))
