"""Publishing live events to a user's connections, wherever they are held: the pub/sub side
of the live-event contract, shared by the router (new and merged inbox rows) and realtime
(events it makes itself); the edge's hub delivers them to the connections.

Each node subscribes to the pub/sub channel of every user it holds a connection for
(``constants.user_channel``); publishing is one PUBLISH, answered by how many nodes got it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from notify_core.cache.base import PubSub
from notify_core.constants import user_channel
from notify_core.convert import live_event, row_to_json


async def publish_live(
    pubsub: PubSub, namespace: str, user_id: str, notification: Mapping[str, Any]
) -> int:
    """Send a new-notification event to every live connection of ``user_id``."""
    return await pubsub.publish(user_channel(namespace, user_id), live_event(notification))


async def publish_changes(
    pubsub: PubSub,
    namespace: str,
    new: Sequence[Mapping[str, Any]],
    updated: Sequence[Mapping[str, Any]],
) -> list[int]:
    """One round trip for a batch's live events: ``notification`` for each new inbox row,
    ``notification_updated`` for each earlier one that changed (a merge).

    New rows go out in the order a resume replays them (``Inbox.after``: when they entered
    the inbox, then id), so a client's last seen id marks exactly what it has had."""
    ordered = sorted(new, key=lambda r: (r.get("routed_at") is None, r.get("routed_at"), r["id"]))
    frames = [(user_channel(namespace, r["user_id"]), live_event(row_to_json(r))) for r in ordered]
    frames += [
        (
            user_channel(namespace, r["user_id"]),
            live_event(row_to_json(r), "notification_updated"),
        )
        for r in updated
    ]
    return await pubsub.publish_many(frames) if frames else []
