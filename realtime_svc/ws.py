"""The WebSocket session of one user connection (DESIGN §5).

On open: ``pending`` (≤50 unread, newest first, and the unread count), or with
``?since=<id>`` the resume of an earlier connection (:mod:`realtime_svc.resume`). Then live
``notification`` events. The client may send ``mark_read`` / ``mark_all_read``; the answer
is ``unread_count``. Frames to the client go through a bounded queue (:class:`Outbox`)
drained by a task that exists only while there is something to send; a client that lets it
overflow is closed with :data:`CLOSE_SLOW_CONSUMER`, so it cannot slow anyone else down.
When the token the connection was opened with expires it is closed with
``CLOSE_TOKEN_EXPIRED``: the client reconnects with a fresh one (``since`` resumes).
:func:`ws_route` declares ``/ws``, which checks its token before accepting the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from notify_core import fastjson
from notify_core.auth import Authenticator
from notify_core.constants import CLOSE_GOING_AWAY, CLOSE_TOKEN_EXPIRED, LIVE_SEND_QUEUE
from notify_core.errors import InvalidArgument, NotifyError, Unauthenticated
from notify_core.http import error_response
from notify_core.routes import SELF, WEBSOCKET, HttpRoute
from notify_core.storable import loads
from realtime_svc.hub import Hub
from realtime_svc.inbox import Cursor, Inbox
from realtime_svc.outbox import Outbox, end_at_expiry
from realtime_svc.resume import opening, resume_cursor

log = logging.getLogger(__name__)

WS_PATH = "/ws"

CLOSE_SLOW_CONSUMER = 4008
"""Close code: the client did not read fast enough and its send queue overflowed."""


class Session(Outbox):
    """One WebSocket connection: implements ``hub.LiveConnection``."""

    def __init__(
        self,
        websocket: WebSocket,
        user_id: str,
        conn_id: str,
        *,
        queue_limit: int = LIVE_SEND_QUEUE,
    ) -> None:
        super().__init__(user_id, conn_id, queue_limit=queue_limit)
        self.websocket = websocket
        self._sender: asyncio.Task[None] | None = None

    async def write(self, payload: bytes) -> None:
        await self.websocket.send_text(payload.decode())

    async def send_json(self, event: dict[str, Any]) -> None:
        await self.websocket.send_text(fastjson.dumps(event).decode())

    def _wake(self) -> None:
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._drain())

    def _overflowed(self) -> None:
        self._sender = asyncio.ensure_future(
            self._close(CLOSE_SLOW_CONSUMER, "send queue overflow")
        )

    def _expired(self) -> None:
        self._sender = asyncio.ensure_future(self._close(CLOSE_TOKEN_EXPIRED, "token expired"))

    async def _drain(self) -> None:
        try:
            while not self.closed and (payload := self.take()) is not None:
                await self.write(payload)
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
    expires_at: float,
    queue_limit: int = LIVE_SEND_QUEUE,
    since: Cursor | None = None,
) -> None:
    """Run one accepted connection until it closes or ``expires_at`` (the token's ``exp``)
    passes; ``since`` resumes an earlier one."""
    session = Session(websocket, user_id, hub.new_connection_id(), queue_limit=queue_limit)
    try:
        await hub.attach(session)
    except NotifyError as exc:
        await websocket.close(code=exc.ws_close_code, reason=exc.message[:120])
        return
    expiry = end_at_expiry(session, expires_at)
    try:
        first = await opening(inbox, user_id, since)
        await session.open(first.frames, first.sent)
        while True:
            text = await websocket.receive_text()
            await _handle_client(session, inbox, text)
    except WebSocketDisconnect:
        pass
    except NotifyError as exc:
        log.warning("closing websocket of %s: %s", user_id, exc)
        await session._close(1011, exc.message[:120])
    finally:
        expiry.cancel()
        session.closed = True
        await hub.detach(session)


async def _handle_client(session: Session, inbox: Inbox, text: str) -> None:
    try:
        message = loads(text)
    except InvalidArgument as exc:
        await _error(session, exc.code, exc.message)
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


def ws_route(
    auth: Authenticator, hub: Hub, inbox: Inbox, *, queue_limit: int = LIVE_SEND_QUEUE
) -> HttpRoute:
    """``/ws``: the user token comes as ``?token=`` (browsers' WebSocket sets no headers)
    and is checked before the handshake is accepted (401 otherwise)."""

    async def websocket_endpoint(websocket: WebSocket) -> None:
        try:
            token = websocket.query_params.get("token")
            if not token:
                raise Unauthenticated("missing token (connect to /ws?token=<jwt>)")
            user_id, expires_at = auth.session(token)
            since = await resume_cursor(
                inbox, user_id, "since", websocket.query_params.get("since")
            )
        except NotifyError as exc:
            await websocket.send_denial_response(error_response(exc))
            return
        await websocket.accept()
        await serve_session(
            websocket,
            user_id,
            hub,
            inbox,
            expires_at=expires_at,
            queue_limit=queue_limit,
            since=since,
        )

    how = "a user token as ?token= (browsers' WebSocket sets no headers), checked here"
    return HttpRoute(WEBSOCKET, WS_PATH, SELF, websocket_endpoint, note=how)
