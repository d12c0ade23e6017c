"""Publishing live events to a user's connections, wherever they are held.

Each node subscribes to the pub/sub channel of every user it holds a connection for
(``constants.user_channel``); publishing is one PUBLISH, answered by how many nodes got it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from notify_core.cache.base import PubSub
from notify_core.constants import user_channel
from notify_core.convert import live_event


async def publish_live(
    pubsub: PubSub, namespace: str, user_id: str, notification: Mapping[str, Any]
) -> int:
    """Send a new-notification event to every live connection of ``user_id``."""
    return await pubsub.publish(user_channel(namespace, user_id), live_event(notification))


async def publish_live_many(
    pubsub: PubSub, namespace: str, notifications: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Send new-notification events for many users in one round trip."""
    return await pubsub.publish_many(
        [(user_channel(namespace, n["user_id"]), live_event(n)) for n in notifications]
    )


async def publish_event(
    pubsub: PubSub, namespace: str, user_id: str, event: Mapping[str, Any]
) -> int:
    """Send any event object to every live connection of ``user_id``."""
    payload = json.dumps(event, separators=(",", ":")).encode()
    return await pubsub.publish(user_channel(namespace, user_id), payload)
