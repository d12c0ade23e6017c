"""Cached inbox reads: each user's first page (as its encoded JSON body) and unread count.

Kept in the cache backend (Redis when configured, else this process's memory), shared by
every edge process and node on it. Only the default query is cached: the first page at the
default page size, without filters.

Invalidation is race-free through a per-user token (``inbox_token_key``). A reader first
takes the user's current token (or makes one), then reads the database, then stores what
it read *with that token inside the value*; an entry counts only while its token is the
current one. Every change to the user's inbox (routed, merged, released, marked read) calls
:func:`forget` after its commit, which deletes the token: a reader whose database read began
before the change can only store under the deleted token, so its entry is never served.
Entries also expire after ``INBOX_CACHE_TTL_SECONDS``, a backstop for a ``forget`` that
could not reach the cache.

When the cache backend fails, reads answer from the database (a warning is logged, at most
every ``_WARN_EVERY`` seconds) and stores are skipped; nothing fails because of it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from notify_core.cache.base import Cache, CacheBackends
from notify_core.constants import (
    INBOX_CACHE_TTL_SECONDS,
    INBOX_TOKEN_TTL_SECONDS,
    inbox_count_key,
    inbox_page_key,
    inbox_token_key,
)
from notify_core.errors import CacheUnavailable, NotifyError
from notify_core.live import publish_changes

log = logging.getLogger(__name__)

_WARN_EVERY = 10.0
"""Seconds between two warnings about the cache backend failing."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached read: the unread count, and the first page's body (empty for a count)."""

    unread: int
    body: bytes


def pack(token: bytes, unread: int, body: bytes = b"") -> bytes:
    """The stored value of an entry computed under ``token``."""
    return b"%s\n%d\n%s" % (token, unread, body)


def unpack(token: bytes | None, value: bytes | None) -> Entry | None:
    """The entry in ``value`` when it was stored under ``token``, the current token."""
    if token is None or value is None:
        return None
    stored, _, rest = value.partition(b"\n")
    if stored != token:
        return None
    unread, _, body = rest.partition(b"\n")
    return Entry(int(unread), body)


class InboxCache:
    """Cached first pages and unread counts for the users of ``namespace``."""

    def __init__(self, backends: CacheBackends, namespace: str) -> None:
        self._cache: Cache = backends.cache
        self._ns = namespace
        self._warned = -_WARN_EVERY

    async def first_page(
        self, user_id: str, load: Callable[[], Awaitable[tuple[int, bytes]]]
    ) -> bytes:
        """The first page's body; on a miss ``load()`` answers the unread count and the
        body from the database, and they are stored."""
        keys = self._keys(user_id)
        try:
            token, page = await self._cache.get_many([keys[0], keys[1]])
            if (hit := unpack(token, page)) is not None:
                return hit.body
            token = token or await self._new_token(keys[0])
        except CacheUnavailable as exc:
            self._warn(exc)
            return (await load())[1]
        unread, body = await load()
        await self._store(keys[1], pack(token, unread, body))
        return body

    async def unread(self, user_id: str, load: Callable[[], Awaitable[int]]) -> int:
        """The unread count: from a cached count or first page, else ``load()`` (stored)."""
        keys = self._keys(user_id)
        try:
            token, page, count = await self._cache.get_many(keys)
            hit = unpack(token, count) or unpack(token, page)
            if hit is not None:
                return hit.unread
            token = token or await self._new_token(keys[0])
        except CacheUnavailable as exc:
            self._warn(exc)
            return await load()
        unread = await load()
        await self._store(keys[2], pack(token, unread))
        return unread

    async def forget(self, user_ids: Iterable[str]) -> None:
        """Invalidate what is cached for ``user_ids`` (after the change committed)."""
        await forget_in(self._cache, self._ns, user_ids)

    def _keys(self, user_id: str) -> list[str]:
        return [
            inbox_token_key(self._ns, user_id),
            inbox_page_key(self._ns, user_id),
            inbox_count_key(self._ns, user_id),
        ]

    async def _new_token(self, key: str) -> bytes:
        """A fresh token, made current *before* the database is read."""
        token = os.urandom(8).hex().encode()
        await self._cache.set(key, token, INBOX_TOKEN_TTL_SECONDS)
        return token

    async def _store(self, key: str, value: bytes) -> None:
        try:
            await self._cache.set(key, value, INBOX_CACHE_TTL_SECONDS)
        except CacheUnavailable as exc:
            self._warn(exc)

    def _warn(self, exc: CacheUnavailable) -> None:
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY:
            self._warned = now
            log.warning("inbox cache unavailable, reading from the database: %s", exc)


async def forget_in(cache: Cache, namespace: str, user_ids: Iterable[str]) -> None:
    """Delete the tokens (and entries) of ``user_ids`` in one round trip. A cache that
    fails is logged, not raised: the change is committed, and the entries expire."""
    users = sorted(set(user_ids))
    if not users:
        return
    kinds = (inbox_token_key, inbox_page_key, inbox_count_key)
    keys = [key(namespace, u) for u in users for key in kinds]
    try:
        await cache.delete(*keys)
    except CacheUnavailable as exc:
        log.warning(
            "inbox cache: could not invalidate %d users (entries expire within %.0f s): %s",
            len(users),
            INBOX_CACHE_TTL_SECONDS,
            exc,
        )


async def forget(backends: CacheBackends, namespace: str, user_ids: Iterable[str]) -> None:
    """:func:`forget_in` on ``backends``' cache: what writers of a user's inbox call after
    their commit."""
    await forget_in(backends.cache, namespace, user_ids)


async def show_changes(
    backends: CacheBackends,
    namespace: str,
    new: Sequence[Mapping[str, Any]],
    updated: Sequence[Mapping[str, Any]],
) -> None:
    """After a commit that put ``new`` rows in users' inboxes and changed ``updated`` ones:
    their cached reads forgotten first (a client that gets the event must not read the old
    page), then the live events published. A failed publish is logged: the inbox holds
    the rows, and the users see them on their next connect."""
    await forget(backends, namespace, [r["user_id"] for r in (*new, *updated)])
    try:
        await publish_changes(backends.pubsub, namespace, new, updated, presence=backends.presence)
    except NotifyError as exc:
        log.warning("live publish of %d notifications failed: %s", len(new) + len(updated), exc)
