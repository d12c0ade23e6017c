"""How a merged notification reads: pure text arithmetic.

When sends carrying the same group key merge (same user, type and group key within the
window), the earlier one stays in the inbox, takes the newest one's title and a message
that counts the others, and keeps the highest priority of them all. A producer that names
who acted in ``data.actor`` gets the familiar form: "Bob commented on your post" merged
into an entry of three reads "Bob and 2 others commented on your post". Without an actor
(or when the message does not start with it) the count is appended: "New comment (+2
more)".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from notify_core.domain import Priority


def actor_of(data: Mapping[str, Any] | None) -> str | None:
    actor = (data or {}).get("actor")
    return actor if isinstance(actor, str) and actor.strip() else None


def merged_message(message: str, actor: str | None, count: int) -> str:
    """The message of an entry that now stands for ``count`` notifications, the newest of
    which said ``message`` (by ``actor``)."""
    others = count - 1
    if others <= 0:
        return message
    tail = "1 other" if others == 1 else f"{others} others"
    if actor and message.startswith(actor):
        return f"{actor} and {tail}{message[len(actor) :]}"
    return f"{message} (+{others} more)"


def highest(priorities: Iterable[str]) -> str:
    """The highest of the priority names ``priorities`` (``high`` > ``normal`` > ``low``)."""
    return max(priorities, key=lambda p: Priority(p).queue_priority)
