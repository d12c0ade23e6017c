"""The edge's HTTP server: uvicorn inside this process, on sockets bound here.

* With several edge processes each binds the same port with ``SO_REUSEPORT``
  (:func:`bind_sockets`) and the kernel spreads new connections across them.
* An idle WebSocket costs as little as the libraries allow: the sans-I/O ``websockets``
  protocol, no per-message deflate (a zlib context per connection), a 64 KiB message limit,
  pings from timers rather than tasks; uvicorn's protocol gets a lighter event queue and
  lets the handshake response go (:class:`_LeanWebSocketProtocol`), and ``/ws`` is dispatched
  straight to its endpoint (:func:`ws_fast_path`), so no router or middleware frames stay
  suspended under each idle connection. The one task per connection is the endpoint's own.
* Connections are guarded by :mod:`realtime_svc.http_protocol` (header and idle timeouts,
  resets for abandoned responses). Only live connections (WebSocket, SSE) count against
  ``NOTIFY_MAX_CONNECTIONS``, in the hub; plain requests have their own bound
  (:func:`bound_plain_requests`), and idle connections take no slot of either.
* :meth:`EdgeServer.stop` is the graceful exit: stop listening, close every live
  connection with 1001 (going away), wait for them within the grace period, then let
  uvicorn finish the plain requests still in flight with whatever time is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from notify_core.config import Settings
from notify_core.constants import EDGE_HTTP_HEADROOM
from notify_core.errors import Unavailable
from notify_core.http import error_response
from realtime_svc.http_protocol import http_protocol
from realtime_svc.hub import Hub
from realtime_svc.sse import STREAM_PATH
from realtime_svc.ws import WS_PATH

log = logging.getLogger(__name__)

WS_MAX_MESSAGE_BYTES = 64 * 1024
"""Largest message a client may send (theirs are ``mark_read`` and the like)."""
LISTEN_BACKLOG = 4096


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process's owner handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Mailbox:
    """The part of ``asyncio.Queue`` uvicorn's WebSocket protocol uses for the events it
    hands the application (``put_nowait``, ``get``, ``empty``), for one reader, without the
    queue's three deques and event (about 3 KB per idle connection). It holds one or two
    events at a time: the protocol stops reading after each message until it is taken."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class _LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with a lighter event queue (:class:`_Mailbox`),
    and without the handshake response it would keep for the connection's whole life."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self.queue, asyncio.Queue) and self.queue.empty():
            self.queue = _Mailbox()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete:
            vars(self).pop("response", None)


def ws_fast_path(app: Starlette, path: str = WS_PATH) -> ASGIApp:
    """``app``, with WebSocket requests for ``path`` handed straight to the endpoint of its
    ``WebSocketRoute`` (same behaviour, fewer suspended frames per connection)."""
    endpoints = [r.endpoint for r in app.routes if isinstance(r, WebSocketRoute) and r.path == path]
    if not endpoints:
        return app
    endpoint = endpoints[0]

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == path:
            scope["app"] = app
            await endpoint(WebSocket(scope, receive=receive, send=send))
            return
        await app(scope, receive, send)

    return dispatch


def bound_plain_requests(app: ASGIApp, limit: int, live_paths: frozenset[str]) -> ASGIApp:
    """``app``, answering 503 to a plain HTTP request (neither a WebSocket nor one of
    ``live_paths``) while ``limit`` of them are in flight. Live connections are limited by
    the hub; idle connections by their timeouts."""
    in_flight = 0
    busy = error_response(
        Unavailable(f"this server is answering its most requests at once ({limit}); try again")
    )

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal in_flight
        if scope["type"] != "http" or scope["path"] in live_paths:
            await app(scope, receive, send)
            return
        if in_flight >= limit:
            await busy(scope, receive, send)
            return
        in_flight += 1
        try:
            await app(scope, receive, send)
        finally:
            in_flight -= 1

    return dispatch


def bind_sockets(host: str, port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """TCP sockets bound (not yet listening) to every address of ``host`` on ``port``;
    with ``reuse_port``, other processes may bind the same port the same way and the
    kernel spreads incoming connections across those that listen. Port 0 picks one free
    port, the same for every address."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        for family, kind, proto, _, addr in infos:
            if (family, addr[0]) in seen:
                continue
            seen.add((family, addr[0]))
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                addr = (addr[0], socks[0].getsockname()[1], *addr[2:])
            sock.bind(addr)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def _whole_seconds(seconds: float) -> int:
    """uvicorn takes its shutdown timeout in whole seconds: at least one."""
    return max(1, math.ceil(seconds))


class EdgeServer:
    """Serves ``app`` on ``sockets`` (bound here when not given) until :meth:`stop`."""

    def __init__(
        self,
        app: Starlette,
        hub: Hub,
        settings: Settings,
        sockets: list[socket.socket] | None = None,
    ) -> None:
        self.app = app
        self._hub = hub
        self._grace = settings.shutdown_grace
        self._sockets = sockets or bind_sockets(settings.host, settings.http_port)
        config = uvicorn.Config(
            bound_plain_requests(ws_fast_path(app), EDGE_HTTP_HEADROOM, frozenset({STREAM_PATH})),
            ws=_LeanWebSocketProtocol,
            http=http_protocol(settings.http_header_timeout),
            # uvicorn hands it to call_later, which takes any number of seconds
            timeout_keep_alive=settings.http_idle_timeout,  # type: ignore[arg-type]
            ws_ping_interval=settings.ws_ping_interval,
            ws_ping_timeout=settings.ws_ping_interval,
            ws_per_message_deflate=False,
            ws_max_size=WS_MAX_MESSAGE_BYTES,
            lifespan="off",
            log_level="warning",
            access_log=False,
            backlog=LISTEN_BACKLOG,
            timeout_graceful_shutdown=_whole_seconds(self._grace),
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self._sockets[0].getsockname()[1])

    async def start(self) -> int:
        """Listen; answer the port."""
        self._task = asyncio.ensure_future(self._server.serve(sockets=self._sockets))
        self._task.set_name("http")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise OSError(f"the edge could not listen on port {self.port}")
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        """Stop listening, send 1001 to every live connection and wait for them to close
        (within the grace period), then let uvicorn finish what is left of it."""
        if self._task is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace
        for server in getattr(self._server, "servers", []):
            server.close()
        left = await self._hub.drain(self._grace)
        if left:
            log.warning("closing %d live connections that did not leave in time", left)
        self._server.config.timeout_graceful_shutdown = _whole_seconds(deadline - loop.time())
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await self._task
        self._task = None
