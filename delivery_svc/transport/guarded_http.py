"""An httpx transport whose every connection passes the SSRF guard, pinned to the checked IP.

httpcore opens connections through a *network backend*; :class:`GuardedBackend` is one that
resolves the host itself, checks every address with :func:`~.ssrf.checked_addresses`, and
then connects to those very addresses (the first that answers). The URL keeps its host
name, so the ``Host`` header, TLS SNI and certificate verification all use the name, while
the socket goes to an address that was checked: DNS is asked once per connection and its
answer is the one used (no rebinding window). Pooled connections are keyed by the URL's
origin (scheme, name, port) and were each checked when opened.

:class:`GuardedTransport` is ``httpx.AsyncHTTPTransport`` rebuilt on public httpcore API
so that it can take that backend: one ``httpcore.AsyncConnectionPool``, httpcore errors
mapped to their httpx counterparts. It never uses a proxy (so nothing from the
environment can route around the guard) and never a Unix socket.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpcore
import httpx

from delivery_svc.transport.ssrf import (
    PROVIDER,
    Resolver,
    TargetPolicy,
    checked_addresses,
    system_resolver,
)
from delivery_svc.transport.tls import client_tls
from notify_core.errors import PermanentDeliveryError

# Most specific first: the first match wins.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc) or type(exc).__name__) from exc
        if type(exc).__module__.startswith("httpcore"):
            raise httpx.TransportError(str(exc) or type(exc).__name__) from exc
        raise


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, and only to those it checked."""

    def __init__(
        self,
        policy: TargetPolicy,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, self._policy, self._resolver)
        options = list(socket_options) if socket_options is not None else None
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses is never empty
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise PermanentDeliveryError(PROVIDER, "webhooks are never sent over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            with _httpx_errors():
                await self._stream.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over one pool of guarded, pinned connections."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or client_tls(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(policy, resolver),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        with _httpx_errors():
            await self._pool.aclose()


def guarded_client(
    policy: TargetPolicy,
    *,
    timeout: float,
    connect_timeout: float,
    max_connections: int,
    keepalive: float,
    user_agent: str,
    ssl_context: ssl.SSLContext | None = None,
    resolver: Resolver = system_resolver,
) -> httpx.AsyncClient:
    """An HTTP client for URLs users supply (webhooks, web push endpoints): every
    connection through :class:`GuardedTransport`, no redirects, no proxy or ``.netrc`` from
    the environment, ``timeout`` for the whole exchange, answers not decompressed."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive,
    )
    return httpx.AsyncClient(
        transport=GuardedTransport(
            policy, limits=limits, ssl_context=ssl_context, resolver=resolver
        ),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
        headers={"user-agent": user_agent, "accept-encoding": "identity"},
    )
