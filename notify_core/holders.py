"""Holders: the processes (a node's hub, each edge process's hub) that hold live connections.

Every hub has a holder id, and the id of each connection it holds starts with it:
``<holder>.<uuid>``. The presence registry keeps connection ids, so it also answers which
holders hold a user (``PresenceInfo.holders``), and a batch of live events can go out as
one message per holder, on the holder's own channel (``constants.holder_channel``), instead
of one per user.

That message is an *envelope*: ``(user_id, frame)`` pairs, each frame encoded once, packed
with length prefixes (a frame is any bytes; a user id any text)::

    repeated: u16 len(user_id utf-8) | u32 len(frame) | user_id | frame
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable

_SEP = "."
_HEAD = struct.Struct(">HI")


def new_holder_id() -> str:
    """A fresh holder id (no ``.`` in it, so a connection id splits unambiguously)."""
    return uuid.uuid4().hex[:16]


def connection_id(holder: str) -> str:
    """A new connection id under ``holder``."""
    return f"{holder}{_SEP}{uuid.uuid4().hex}"


def holder_of(conn_id: str) -> str:
    """The holder named by a connection id. An id in no holder's format (made elsewhere)
    is answered as itself: a holder nobody listens for, so publishing to it reaches no one
    and the publisher falls back to the user's own channel."""
    return conn_id.partition(_SEP)[0]


def pack(pairs: Iterable[tuple[str, bytes]]) -> bytes:
    """The envelope of ``(user_id, frame)`` pairs, in order."""
    parts: list[bytes] = []
    for user_id, frame in pairs:
        user = user_id.encode()
        parts.append(_HEAD.pack(len(user), len(frame)))
        parts.append(user)
        parts.append(frame)
    return b"".join(parts)


def unpack(envelope: bytes) -> list[tuple[str, bytes]]:
    """The ``(user_id, frame)`` pairs of an envelope made by :func:`pack`, in order.
    Raises ``ValueError`` on a truncated one."""
    pairs: list[tuple[str, bytes]] = []
    view = memoryview(envelope)
    at, end, head = 0, len(envelope), _HEAD.size
    while at < end:
        if at + head > end:
            raise ValueError("truncated envelope header")
        user_len, frame_len = _HEAD.unpack_from(envelope, at)
        at += head
        stop = at + user_len + frame_len
        if stop > end:
            raise ValueError("truncated envelope entry")
        user = str(view[at : at + user_len], "utf-8")
        pairs.append((user, bytes(view[at + user_len : stop])))
        at = stop
    return pairs
