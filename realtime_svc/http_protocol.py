"""The edge's HTTP/1.1 protocol: uvicorn's (httptools) with the timeouts a public port needs.

* **Header timeout.** A client has ``header_timeout`` seconds to send a request's headers,
  counted from its connect for the first request and from the first byte of each later one
  on a keep-alive connection; then the connection is closed. uvicorn has no such timer: a
  connection that sent nothing, or half a request line, stayed open for good.
* **Idle timeout.** Between requests uvicorn's keep-alive timer (``timeout_keep_alive``,
  ``NOTIFY_HTTP_IDLE_TIMEOUT``) closes the connection; one that still holds bytes its client
  never read is reset instead, as a close would wait for that client for good.
* **Unfinished responses are reset.** When the application returns (or fails) in the middle
  of a response body — an event stream that gave up on a client that does not read — the
  connection is reset at once (:func:`reset`): what was queued for the client is dropped and
  the file is released, where uvicorn's close would wait for the client to read first.

A request's headers done, the protocol is uvicorn's: a WebSocket upgrade hands the
connection to the WebSocket protocol, which has pings of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from notify_core.constants import HTTP_HEADER_TIMEOUT_SECONDS

_LINGER_RESET = struct.pack("ii", 1, 0)
"""``SO_LINGER`` on, zero seconds: closing the socket sends a reset and drops unsent bytes."""


def reset(transport: asyncio.Transport) -> None:
    """Drop the connection now, with whatever it had not sent yet; the peer sees a reset."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a header timeout and resets (module docstring)."""

    header_timeout: float = HTTP_HEADER_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._inner_app: ASGIApp = self.app
        self.app = self._run_app

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing() and self.transport.get_write_buffer_size():
            reset(self.transport)
            return
        super().timeout_keep_alive_handler()

    def _start_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    async def _run_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The application, with the connection reset when it leaves a response unfinished."""
        started = finished = False

        async def tracked(message: Message) -> None:
            nonlocal started, finished
            await send(message)
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True

        try:
            await self._inner_app(scope, receive, tracked)
        finally:
            if started and not finished:
                reset(self.transport)
                # One turn of the loop: the connection is lost (uvicorn marks the request
                # disconnected) before uvicorn looks at how the application ended.
                await asyncio.sleep(0)


def http_protocol(header_timeout: float) -> type[GuardedHttpProtocol]:
    """The protocol class uvicorn should build each connection with (``Config(http=...)``)."""

    class EdgeHttpProtocol(GuardedHttpProtocol):
        pass

    EdgeHttpProtocol.header_timeout = header_timeout
    return EdgeHttpProtocol
