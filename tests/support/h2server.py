"""An ASGI app served over TLS with HTTP/2 (hypercorn) on a free port of 127.0.0.1, for
the fakes of providers that speak HTTP/2 (FCM, APNs).

The certificate is issued for ``localhost`` and ``127.0.0.1`` by a throwaway ``trustme``
CA; :attr:`TlsServer.ca_file` is that CA as PEM, which a test hands to the code under test
the way an operator would: ``SSL_CERT_FILE`` (see :func:`trusting`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config


@dataclass(frozen=True, slots=True)
class TlsServer:
    port: int
    ca_file: str
    """The CA that signed the server's certificate, PEM."""

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving_h2(
    app: Any, port: int = 0, *, requests_per_connection: int | None = None
) -> AsyncIterator[TlsServer]:
    """``app`` over TLS (HTTP/2 offered by ALPN, HTTP/1.1 too) until the block ends, on
    ``port`` (0: a free one). After ``requests_per_connection`` requests (None: hypercorn's
    default, 1,000) hypercorn closes the connection, streams still in flight included."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="notify-h2-") as tmp:
        ca_file = Path(tmp, "ca.pem")
        ca.cert_pem.write_to_path(str(ca_file))
        chain, key = Path(tmp, "chain.pem"), Path(tmp, "key.pem")
        cert.private_key_pem.write_to_path(str(key))
        _write(chain, b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        port = port or _free_port()
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.certfile, config.keyfile = str(chain), str(key)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.loglevel = "WARNING"
        config.accesslog = None
        if requests_per_connection is not None:
            config.keep_alive_max_requests = requests_per_connection
        stop = asyncio.Event()
        task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
        await _until_listening(port, task)
        try:
            yield TlsServer(port, str(ca_file))
        finally:
            stop.set()
            await task


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


async def _until_listening(port: int, task: asyncio.Task[None]) -> None:
    while True:
        if task.done():
            task.result()  # it failed to start: raise why
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return


@contextmanager
def trusting(ca_file: str) -> Iterator[None]:
    """``SSL_CERT_FILE`` names ``ca_file`` inside the block (restored after)."""
    before = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = ca_file
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = before


def bundle(path: Path, *ca_files: str) -> str:
    """The CAs ``ca_files`` in one PEM file at ``path`` (for code talking to several test
    servers, each with its own CA, under one ``SSL_CERT_FILE``)."""
    path.write_text("".join(Path(f).read_text() for f in ca_files))
    return str(path)
