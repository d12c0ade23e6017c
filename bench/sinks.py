"""Receivers for the delivery and push benchmarks, each run as its own process (its CPU is
its own):

- ``smtp``: an aiosmtpd server that accepts every message (250) and counts it by
  ``Message-ID`` (found with one regular expression over the header block, no MIME
  parsing);
- ``webhook``: a bare asyncio HTTP/1.1 server (keep-alive, ``Content-Length`` bodies)
  that answers every POST with 200 and counts it by ``webhook-id``;
- ``fcm``: the test suite's FCM server (``tests/support/fcm.py``: Google's OAuth token
  endpoint and FCM's ``messages:send``, over TLS with HTTP/2, every request checked as in
  the tests), counting each accepted send by its registration token. It writes
  ``fcm.env`` (``NOTIFY_FCM_CREDENTIALS``, ``NOTIFY_FCM_ENDPOINT``, ``SSL_CERT_FILE``) into
  ``--dir``, as ``scripts/local_fcm.py`` does.

All listen on ``--port`` and answer on ``--control-port`` one line per connection: send
``stats`` for a JSON object ``{"received", "unique", "first_at", "last_at"}`` (times are
``time.time()`` of the first and the latest message; ``fcm`` adds ``refused``, the sends
it did not accept), or ``reset`` to forget everything.

    .venv/bin/python bench/sinks.py smtp --port 2525 --control-port 2526
    .venv/bin/python bench/sinks.py fcm --port 8443 --control-port 8444 --dir /tmp/bench-fcm
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class Tally:
    """Messages received, by id."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.counts: dict[bytes, int] = {}
        self.received = 0
        self.first_at = 0.0
        self.last_at = 0.0

    def add(self, key: bytes) -> None:
        now = time.time()
        if not self.received:
            self.first_at = now
        self.received += 1
        self.last_at = now
        self.counts[key] = self.counts.get(key, 0) + 1

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "unique": len(self.counts),
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


async def _control(tally: Tally, port: int) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            command = (await reader.readline()).strip()
            if command == b"reset":
                tally.reset()
                writer.write(b"{}\n")
            else:
                writer.write(json.dumps(tally.stats()).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


class _SmtpHandler:
    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        end = _HEADER_END.search(raw)
        found = _MESSAGE_ID.search(raw, 0, end.start() if end else len(raw))
        self.tally.add(found.group(1) if found else b"")
        return "250 OK"


async def serve_smtp(port: int, control_port: int) -> None:
    from aiosmtpd.smtp import SMTP

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    tally = Tally()
    handler = _SmtpHandler(tally)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", ident="sink"), "127.0.0.1", port
    )
    control = await _control(tally, control_port)
    print(f"smtp-sink: listening on {port}", flush=True)
    async with server, control:
        await asyncio.Future()


_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class _HttpSink(asyncio.Protocol):
    """HTTP/1.1 requests with ``Content-Length`` bodies, one after another per connection
    (pipelined requests are answered in order)."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            webhook_id = b""
            for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"webhook-id":
                    webhook_id = value.strip()
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            self.tally.add(webhook_id)
            assert self.transport is not None
            self.transport.write(_OK)


async def serve_webhook(port: int, control_port: int) -> None:
    tally = Tally()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _HttpSink(tally), "127.0.0.1", port, backlog=1024)
    control = await _control(tally, control_port)
    print(f"webhook-sink: listening on {port}", flush=True)
    async with server, control:
        await asyncio.Future()


async def ask(control_port: int, command: str = "stats") -> dict[str, Any]:
    """Send ``command`` to a sink's control port; answer its JSON reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", control_port)
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        reply: dict[str, Any] = json.loads(await reader.readline())
        return reply
    finally:
        writer.close()


class FcmTally(Tally):
    """Accepted sends by registration token, and the sends refused."""

    def reset(self) -> None:
        super().reset()
        self.refused = 0

    def stats(self) -> dict[str, Any]:
        return super().stats() | {"refused": self.refused}


def _write_fcm_env(directory: Path, credentials: Path, url: str, ca_file: str) -> None:
    shutil.copyfile(ca_file, directory / "ca.pem")
    (directory / "fcm.env").write_text(
        f"NOTIFY_FCM_CREDENTIALS={credentials}\n"
        f"NOTIFY_FCM_ENDPOINT={url}\n"
        f"SSL_CERT_FILE={directory / 'ca.pem'}\n"
    )


async def serve_fcm(port: int, control_port: int, directory: Path) -> None:
    """``tests/`` must be importable: :func:`main` puts the project root on the path."""
    from starlette.requests import Request
    from starlette.responses import Response

    from tests.support.fcm import FakeFcm, new_key, write_service_account
    from tests.support.h2server import serving_h2

    tally = FcmTally()

    class CountingFcm(FakeFcm):
        """The fake, answering as it does; each accepted send is counted, not kept."""

        async def send(self, request: Request) -> Response:
            response = await super().send(request)
            if response.status_code == 200:
                tally.add(str(self.accepted.pop().message.get("token", "")).encode())
            else:
                tally.refused += 1
            return response

    key = new_key()
    fake = CountingFcm(public_key=key.public_key(), key_id="0123456789abcdef")
    # Hypercorn closes a connection after 1,000 requests by default, failing the streams
    # in flight; FCM keeps its connections open for far longer.
    async with serving_h2(fake.app(), port, requests_per_connection=10**9) as server:
        fake.token_uri = f"{server.url}/token"
        credentials = write_service_account(directory, key, token_uri=fake.token_uri)
        _write_fcm_env(directory, credentials, server.url, server.ca_file)
        control = await _control(tally, control_port)
        print(f"fcm-sink: listening on {port}", flush=True)
        async with control:
            await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(description="receivers for the benchmarks")
    parser.add_argument("kind", choices=("smtp", "webhook", "fcm"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--dir", type=Path, help="fcm: where fcm.env, the key and CA go")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        if args.kind == "fcm":
            if args.dir is None:
                parser.error("fcm needs --dir")
            args.dir.mkdir(parents=True, exist_ok=True)
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            asyncio.run(serve_fcm(args.port, args.control_port, args.dir))
        elif args.kind == "smtp":
            asyncio.run(serve_smtp(args.port, args.control_port))
        else:
            asyncio.run(serve_webhook(args.port, args.control_port))


if __name__ == "__main__":
    main()
