"""Publishing live events to a user's connections, wherever they are held: the pub/sub side
of the live-event contract, shared by the router (new and merged inbox rows) and realtime
(events it makes itself); the edge's hub delivers them to the connections.

Two ways out, both answered by how many hubs got each message:

- per user: each hub subscribes to the channel of every user it holds a connection for
  (``constants.user_channel``); one PUBLISH per event. Single events go this way, and any
  batch smaller than ``LIVE_BY_HOLDER_MIN``, where it measured faster.
- per holder (``notify_core.holders``): a batch reads the presence of its users once, and
  sends each holder that holds any of them one envelope of their ``(user, frame)`` pairs on
  the holder's channel — as many publishes as hubs, not as users. Users presence shows
  offline get nothing live (the inbox has the rows, and a connection opening meanwhile
  reads them). When presence cannot be read, or a holder's envelope reached nobody (a
  process gone whose entries have not expired yet, or a hub that makes no holder ids), the
  events of the users concerned go out per user instead, so nothing is lost; a user also
  held by a hub that did receive may then see the event twice there.

Each event is encoded once, whichever way it goes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notify_core.cache.base import Presence, PresenceInfo, PubSub
from notify_core.constants import LIVE_BY_HOLDER_MIN, holder_channel, user_channel
from notify_core.convert import live_event, row_to_json
from notify_core.errors import NotifyError
from notify_core.holders import pack

log = logging.getLogger(__name__)

Frame = tuple[str, bytes]
"""``(user_id, encoded event)``."""


async def publish_live(
    pubsub: PubSub, namespace: str, user_id: str, notification: Mapping[str, Any]
) -> int:
    """Send a new-notification event to every live connection of ``user_id``."""
    return await pubsub.publish(user_channel(namespace, user_id), live_event(notification))


def change_frames(
    new: Sequence[Mapping[str, Any]], updated: Sequence[Mapping[str, Any]]
) -> list[Frame]:
    """A batch's events in the order they go out: ``notification`` for each new inbox row,
    then ``notification_updated`` for each earlier one that changed (a merge).

    New rows go in the order a resume replays them (``Inbox.after``: when they entered the
    inbox, then id), so a client's last seen id marks exactly what it has had."""
    ordered = sorted(new, key=lambda r: (r.get("routed_at") is None, r.get("routed_at"), r["id"]))
    frames = [(r["user_id"], live_event(row_to_json(r))) for r in ordered]
    frames += [(r["user_id"], live_event(row_to_json(r), "notification_updated")) for r in updated]
    return frames


@dataclass
class Fanout:
    """Where a batch's events go: envelopes per holder, and what goes per user."""

    by_holder: dict[str, list[Frame]] = field(default_factory=dict)
    per_user: list[Frame] = field(default_factory=list)
    offline: int = 0
    """Events of users presence shows without any connection: not sent."""


def group_by_holder(frames: Sequence[Frame], presence: Sequence[PresenceInfo]) -> Fanout:
    """Each event to every holder of its user, in batch order; a user presence does not
    know at all (asked about, not answered) goes per user."""
    holders = {info.user_id: info.holders for info in presence}
    fanout = Fanout()
    for user_id, frame in frames:
        held = holders.get(user_id)
        if held is None:
            fanout.per_user.append((user_id, frame))
        elif not held:
            fanout.offline += 1
        for holder in held or ():
            fanout.by_holder.setdefault(holder, []).append((user_id, frame))
    return fanout


def unheard(fanout: Fanout, received: Sequence[int]) -> list[Frame]:
    """The events of holders whose envelope reached nobody (``received`` in the order of
    ``fanout.by_holder``), each once, in batch order within each holder."""
    again: dict[tuple[str, bytes], None] = {}
    for pairs, count in zip(fanout.by_holder.values(), received, strict=True):
        if count == 0:
            again.update(dict.fromkeys(pairs))
    return list(again)


async def publish_changes(
    pubsub: PubSub,
    namespace: str,
    new: Sequence[Mapping[str, Any]],
    updated: Sequence[Mapping[str, Any]],
    *,
    presence: Presence | None = None,
    by_holder_min: int = LIVE_BY_HOLDER_MIN,
) -> list[int]:
    """One round trip (two when a holder did not answer) for a batch's live events (see
    :func:`change_frames`): per holder with ``presence`` and at least ``by_holder_min``
    events, else per user. Answers the receiver count of each message published."""
    frames = change_frames(new, updated)
    if not frames:
        return []
    if presence is None or len(frames) < by_holder_min:
        return await _per_user(pubsub, namespace, frames)
    try:
        infos = await presence.get(list(dict.fromkeys(u for u, _ in frames)))
    except NotifyError as exc:
        log.warning("presence unreadable, %d live events go per user: %s", len(frames), exc)
        return await _per_user(pubsub, namespace, frames)
    fanout = group_by_holder(frames, infos)
    envelopes = [(holder_channel(namespace, h), pack(p)) for h, p in fanout.by_holder.items()]
    per_user = [(user_channel(namespace, u), f) for u, f in fanout.per_user]
    counts = await pubsub.publish_many(envelopes + per_user)
    again = unheard(fanout, counts[: len(envelopes)])
    if again:
        log.info("%d live events of holders nobody listens for go per user", len(again))
        counts += await _per_user(pubsub, namespace, again)
    return counts


async def _per_user(pubsub: PubSub, namespace: str, frames: Sequence[Frame]) -> list[int]:
    return await pubsub.publish_many([(user_channel(namespace, u), f) for u, f in frames])
