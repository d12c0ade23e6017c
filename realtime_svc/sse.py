"""Server-sent events: ``GET /notifications/stream``, the same events as the WebSocket.

Each event's ``data:`` is the JSON object a WebSocket frame would carry (``type`` inside,
no ``event:`` field, so ``EventSource.onmessage`` sees them all). ``notification`` events
carry ``id: <notification id>``; a client reconnecting with ``Last-Event-ID`` (or
``?last_event_id=`` where it cannot set headers) is resumed exactly like ``/ws?since=``
(:mod:`realtime_svc.resume`); without it the first event is ``pending``. An idle stream
gets a ``: keep-alive`` comment every ``SSE_KEEPALIVE_SECONDS``. The queue is bounded as
on the WebSocket (:class:`Outbox`): a client that lets it overflow gets a last
``{"type": "error", "error": {"code": "slow_consumer", ...}}`` and the stream ends; so does
a stream whose token expires (``token_expired``). A dropped client that does not take
its last event within ``SSE_CLOSE_TIMEOUT_SECONDS`` has its connection reset. A draining
server ends every stream (``go_away``); ``EventSource`` reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from notify_core.auth import Authenticator, bearer
from notify_core.constants import LIVE_SEND_QUEUE, SSE_CLOSE_TIMEOUT_SECONDS, SSE_KEEPALIVE_SECONDS
from notify_core.convert import live_event_id
from notify_core.errors import NotifyError, Unauthenticated
from notify_core.http import error_response
from notify_core.routes import SELF, HttpRoute
from realtime_svc.hub import Hub
from realtime_svc.inbox import Cursor, Inbox
from realtime_svc.outbox import Outbox, end_at_expiry
from realtime_svc.resume import Opening, encode, opening, resume_cursor

log = logging.getLogger(__name__)

STREAM_PATH = "/notifications/stream"
KEEPALIVE = b": keep-alive\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def sse_event(payload: bytes) -> bytes:
    """One event: ``id:`` for a ``notification``, ``data:`` the frame's JSON (one line)."""
    nid = live_event_id(payload)
    head = b"id: " + nid.encode() + b"\n" if nid is not None else b""
    return head + b"data: " + payload + b"\n\n"


class EventStream(Outbox):
    """One event-stream connection: implements ``hub.LiveConnection``."""

    def __init__(self, user_id: str, conn_id: str, send: Send, *, queue_limit: int) -> None:
        super().__init__(user_id, conn_id, queue_limit=queue_limit)
        self._send = send
        self.ready = asyncio.Event()
        self.dropped = asyncio.Event()
        """Set when the server ends the stream on the client (overflow, expired token)."""

    async def write(self, payload: bytes) -> None:
        await self.chunk(sse_event(payload))

    async def chunk(self, body: bytes, *, more: bool = True) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": more})

    async def go_away(self) -> None:
        """End the stream: the server is shutting down and asks its connections to go.
        The client's ``EventSource`` reconnects with ``Last-Event-ID`` and resumes."""
        self.closed = True
        self.ready.set()

    def _wake(self) -> None:
        self.ready.set()

    def _overflowed(self) -> None:
        self.ready.set()
        self.dropped.set()

    def _expired(self) -> None:
        self._overflowed()


class EventStreamResponse(Response):
    """A response whose body is the connection's events, for as long as it lasts."""

    def __init__(
        self,
        user_id: str,
        hub: Hub,
        inbox: Inbox,
        cursor: Cursor | None,
        *,
        expires_at: float,
        queue_limit: int = LIVE_SEND_QUEUE,
        keepalive: float = SSE_KEEPALIVE_SECONDS,
    ) -> None:
        # No Response.__init__: that would fix a Content-Length for an empty body.
        self.status_code = 200
        self.background = None
        self.raw_headers = list(HEADERS)
        self._user_id = user_id
        self._hub = hub
        self._inbox = inbox
        self._cursor = cursor
        self._expires_at = expires_at
        self._limit = queue_limit
        self._keepalive = keepalive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = EventStream(
            self._user_id, self._hub.new_connection_id(), send, queue_limit=self._limit
        )
        try:
            await self._hub.attach(stream)
        except NotifyError as exc:
            await error_response(exc)(scope, receive, send)
            return
        expiry = end_at_expiry(stream, self._expires_at)
        try:
            try:
                first = await opening(self._inbox, self._user_id, self._cursor)
            except NotifyError as exc:
                await error_response(exc)(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await self._run(stream, first, receive)
        finally:
            expiry.cancel()
            stream.closed = True
            await self._hub.detach(stream)

    async def _run(self, stream: EventStream, first: Opening, receive: Receive) -> None:
        pump = asyncio.ensure_future(self._pump(stream, first))
        gone = asyncio.ensure_future(_disconnected(receive))
        dropped = asyncio.ensure_future(stream.dropped.wait())
        try:
            await asyncio.wait({pump, gone, dropped}, return_when=asyncio.FIRST_COMPLETED)
            if dropped.done() and not (pump.done() or gone.done()):
                # The last frame and the end of the stream may wait on a client that does
                # not read; it gets a while, then the connection is reset (the response
                # is left unfinished: realtime_svc.http_protocol).
                await asyncio.wait(
                    {pump, gone},
                    timeout=SSE_CLOSE_TIMEOUT_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            for task in (pump, gone, dropped):
                task.cancel()
            await asyncio.gather(pump, gone, dropped, return_exceptions=True)
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            log.warning("event stream of %s ended: %r", self._user_id, pump.exception())

    async def _pump(self, stream: EventStream, first: Opening) -> None:
        await stream.open(first.frames, first.sent)
        while not stream.closed:
            payload = stream.take()
            if payload is not None:
                await stream.write(payload)
                continue
            stream.ready.clear()
            try:
                await asyncio.wait_for(stream.ready.wait(), self._keepalive)
            except TimeoutError:
                await stream.chunk(KEEPALIVE)
        problem = _ending(stream)
        if problem is not None:
            await stream.write(encode({"type": "error", "error": problem}))
        await stream.chunk(b"", more=False)


def _ending(stream: EventStream) -> dict[str, str] | None:
    """The last event's error when the server ends the stream on the client, else None."""
    if stream.overflowed:
        return {
            "code": "slow_consumer",
            "message": "send queue overflow; reconnect with Last-Event-ID to resume",
        }
    if stream.expired:
        return {
            "code": "token_expired",
            "message": "the token expired; reconnect with a new one and Last-Event-ID to resume",
        }
    return None


async def _disconnected(receive: Receive) -> None:
    message: Message = {}
    while message.get("type") != "http.disconnect":
        message = await receive()


def sse_routes(
    auth: Authenticator,
    hub: Hub,
    inbox: Inbox,
    *,
    queue_limit: int = LIVE_SEND_QUEUE,
    keepalive: float = SSE_KEEPALIVE_SECONDS,
) -> list[HttpRoute]:
    """``GET /notifications/stream``: the token comes as ``?token=`` (``EventSource`` cannot
    set headers) or ``Authorization: Bearer``, so the route checks it itself."""

    async def stream(request: Request) -> Response:
        token = request.query_params.get("token")
        header = request.headers.get("authorization")
        if not token and not header:
            raise Unauthenticated(f"missing token (connect to {STREAM_PATH}?token=<jwt>)")
        user_id, expires_at = auth.session(token or bearer(header))
        header_id = request.headers.get("last-event-id")
        field, since = (
            ("Last-Event-ID", header_id)
            if header_id
            else ("last_event_id", request.query_params.get("last_event_id"))
        )
        cursor = await resume_cursor(inbox, user_id, field, since)
        return EventStreamResponse(
            user_id,
            hub,
            inbox,
            cursor,
            expires_at=expires_at,
            queue_limit=queue_limit,
            keepalive=keepalive,
        )

    how = "a user token as ?token= (EventSource sets no headers) or Authorization: Bearer"
    return [HttpRoute("GET", STREAM_PATH, SELF, stream, note=how)]
