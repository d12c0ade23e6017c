"""The opening of a live connection: ``pending`` on a fresh connect, or the resume of one.

A client that saw notifications before may reconnect with the id of the last one
(``since`` on ``/ws``, ``Last-Event-ID`` on the event stream). It then gets, instead of
``pending``::

    {"type": "resumed", "missed": N, "unread_count": U}
    {"type": "notification", "notification": {...}}      # N of these, oldest first

and then live events. When more than ``RESUME_MAX_MISSED`` were missed, nothing is
replayed: it gets ``{"type": "resync", "unread_count": U}`` and should reload its inbox
over REST. The missed notifications are those that entered the user's inbox after
``since`` did, in that order (see ``Inbox.after``), which is the order live events go out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from notify_core import fastjson
from notify_core.constants import MAX_RESUME_ID, PENDING_ON_CONNECT, RESUME_MAX_MISSED
from notify_core.convert import live_event, row_to_json
from notify_core.errors import InvalidArgument
from realtime_svc.inbox import Cursor, Inbox


@dataclass(frozen=True, slots=True)
class Opening:
    frames: list[bytes]
    sent: set[str] = field(default_factory=set)
    """Ids of the notifications the frames carry (live repeats of them are dropped)."""


def encode(event: dict[str, Any]) -> bytes:
    return fastjson.dumps(event)


async def resume_cursor(
    inbox: Inbox, user_id: str, field_name: str, since: str | None
) -> Cursor | None:
    """Where a resume starts: ``None`` without ``since`` (an empty value counts as none);
    ``InvalidArgument`` naming ``field_name`` when it is not in this user's inbox."""
    if not since:
        return None
    if len(since) > MAX_RESUME_ID:
        raise InvalidArgument(field_name, f"must be at most {MAX_RESUME_ID} characters")
    cursor = await inbox.position(user_id, since)
    if cursor is None:
        raise InvalidArgument(
            field_name,
            f"{since!r} is not a notification in your inbox; "
            "connect without it and reload the inbox",
        )
    return cursor


async def opening(inbox: Inbox, user_id: str, cursor: Cursor | None) -> Opening:
    """The first frames of a connection (call once it is attached to the hub, so that
    nothing entering the inbox meanwhile is missed)."""
    if cursor is None:
        rows, unread = await inbox.pending(user_id, PENDING_ON_CONNECT)
        pending = {
            "type": "pending",
            "notifications": [row_to_json(r) for r in rows],
            "unread_count": unread,
        }
        return Opening([encode(pending)], {r["id"] for r in rows})
    rows, unread = await inbox.after(user_id, cursor, RESUME_MAX_MISSED + 1)
    # The client has the notification it resumes from: a late live copy of it is a repeat.
    if len(rows) > RESUME_MAX_MISSED:
        return Opening([encode({"type": "resync", "unread_count": unread})], {cursor.id})
    head = encode({"type": "resumed", "missed": len(rows), "unread_count": unread})
    frames = [head, *(live_event(row_to_json(r)) for r in rows)]
    return Opening(frames, {cursor.id, *(r["id"] for r in rows)})
