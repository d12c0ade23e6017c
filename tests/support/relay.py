"""A TCP relay in front of a local server, whose connections a test can cut as a network
fault would (both sides aborted), while the relay keeps accepting new ones."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class TcpRelay:
    """Bytes both ways between each accepted connection and ``127.0.0.1:target``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.accepted = 0
        """Connections accepted so far (a client that reconnects adds one)."""
        self._writers: list[asyncio.StreamWriter] = []

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            _copy(reader, up_writer), _copy(up_reader, writer), return_exceptions=True
        )

    def cut(self) -> int:
        """Abort every open connection, both sides; answer how many pairs there were."""
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.transport.abort()
        return len(writers) // 2


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


@asynccontextmanager
async def relaying(target: int) -> AsyncIterator[TcpRelay]:
    """A relay to ``target`` on a free port of 127.0.0.1 until the block ends."""
    relay = TcpRelay(target)
    server = await asyncio.start_server(relay._pipe, "127.0.0.1", 0)
    relay.port = int(server.sockets[0].getsockname()[1])
    try:
        yield relay
    finally:
        server.close()
        relay.cut()
        await server.wait_closed()
