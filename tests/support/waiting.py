"""Waiting for what happens asynchronously (routing, acknowledgements, pub/sub)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

INTERVAL = 0.02
"""Seconds between two probes."""


async def eventually(
    probe: Callable[[], Awaitable[T]] | Callable[[], T],
    ok: Callable[[T], bool],
    timeout: float = 10.0,
) -> T:
    """Call ``probe`` (a coroutine function, or a plain function) until ``ok`` holds for
    what it answers, and answer that; fail with the last answer after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value: Any = probe()
        if inspect.isawaitable(value):
            value = await value
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(INTERVAL)
