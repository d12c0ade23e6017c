"""The WebSocket session of one user connection (DESIGN §5).

On open: ``pending`` (≤50 unread, newest first, and the unread count). Then live
``notification`` events. The client may send ``mark_read`` / ``mark_all_read``; the answer
is ``unread_count``. Frames to the client go through a bounded queue drained by a task that
exists only while there is something to send; a client that lets it overflow is closed with
:data:`CLOSE_SLOW_CONSUMER`, so it cannot slow anyone else down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from notify_core.constants import CLOSE_GOING_AWAY, PENDING_ON_CONNECT
from notify_core.convert import row_to_json
from notify_core.errors import NotifyError
from realtime_svc.hub import Hub
from realtime_svc.inbox import Inbox

log = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 4008
"""Close code: the client did not read fast enough and its send queue overflowed."""
SEND_QUEUE_LIMIT = 1_000


class Session:
    """One live connection: implements ``hub.LiveConnection``."""

    def __init__(
        self, websocket: WebSocket, user_id: str, *, queue_limit: int = SEND_QUEUE_LIMIT
    ) -> None:
        self.websocket = websocket
        self.user_id = user_id
        self.conn_id = uuid.uuid4().hex
        self._queue: deque[bytes] = deque()
        self._limit = queue_limit
        self._early: list[bytes] | None = []  # frames that arrive before `pending` is sent
        self._sender: asyncio.Task[None] | None = None
        self.closed = False

    def offer(self, payload: bytes) -> None:
        if self.closed:
            return
        if self._early is not None:
            self._early.append(payload)
            return
        if len(self._queue) >= self._limit:
            self.closed = True
            self._sender = asyncio.ensure_future(
                self._close(CLOSE_SLOW_CONSUMER, "send queue overflow")
            )
            return
        self._queue.append(payload)
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._drain())

    def go_live(self, already_sent: set[str]) -> None:
        """Release the frames that arrived while ``pending`` was prepared, minus repeats."""
        early, self._early = self._early or [], None
        for payload in early:
            try:
                event = json.loads(payload)
                if (
                    event.get("type") == "notification"
                    and event["notification"]["id"] in already_sent
                ):
                    continue
            except (ValueError, KeyError, TypeError):
                pass
            self.offer(payload)

    async def send_json(self, event: dict[str, Any]) -> None:
        await self.websocket.send_text(json.dumps(event, separators=(",", ":")))

    async def _drain(self) -> None:
        try:
            while self._queue and not self.closed:
                await self.websocket.send_text(self._queue.popleft().decode())
        except Exception:
            self.closed = True
        finally:
            self._sender = None

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # already gone
            await self.websocket.close(code=code, reason=reason)

    async def go_away(self) -> None:
        """Close with 1001 (the server is shutting down): ``hub.Departing``."""
        if not self.closed:
            self.closed = True
            await self._close(CLOSE_GOING_AWAY, "server shutting down")


async def serve_session(
    websocket: WebSocket,
    user_id: str,
    hub: Hub,
    inbox: Inbox,
    *,
    queue_limit: int = SEND_QUEUE_LIMIT,
) -> None:
    """Run one accepted connection until it closes."""
    session = Session(websocket, user_id, queue_limit=queue_limit)
    try:
        await hub.attach(session)
    except NotifyError as exc:
        await websocket.close(code=exc.ws_close_code, reason=exc.message[:120])
        return
    try:
        rows, unread = await inbox.pending(user_id, PENDING_ON_CONNECT)
        await session.send_json(
            {
                "type": "pending",
                "notifications": [row_to_json(r) for r in rows],
                "unread_count": unread,
            }
        )
        session.go_live({r["id"] for r in rows})
        while True:
            text = await websocket.receive_text()
            await _handle_client(session, inbox, text)
    except WebSocketDisconnect:
        pass
    except NotifyError as exc:
        log.warning("closing websocket of %s: %s", user_id, exc)
        await session._close(1011, exc.message[:120])
    finally:
        session.closed = True
        await hub.detach(session)


async def _handle_client(session: Session, inbox: Inbox, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        await _error(session, "invalid_argument", "message: not valid JSON")
        return
    if not isinstance(message, dict):
        await _error(session, "invalid_argument", "message: must be a JSON object")
        return
    kind = message.get("type")
    try:
        if kind == "mark_read":
            nid = message.get("id")
            if not isinstance(nid, str) or not nid:
                await _error(session, "invalid_argument", "id: is required and must be a string")
                return
            count = await inbox.mark_read(session.user_id, nid)
        elif kind == "mark_all_read":
            await inbox.mark_all_read(session.user_id)
            count = await inbox.unread_count(session.user_id)
        else:
            await _error(
                session,
                "invalid_argument",
                f"type: must be mark_read or mark_all_read, got {kind!r}",
            )
            return
    except NotifyError as exc:
        await _error(session, exc.code, exc.message)
        return
    await session.send_json({"type": "unread_count", "unread_count": count})


async def _error(session: Session, code: str, message: str) -> None:
    await session.send_json({"type": "error", "error": {"code": code, "message": message}})
