"""``NOTIFY_EDGE_PROCESSES`` > 1: the edge runs as that many child processes on one port.

The node process keeps every other service (and the RealtimeService RPCs). It binds the
HTTP port first, with ``SO_REUSEPORT`` and without listening, which holds the port (and
picks it, when ``NOTIFY_HTTP_PORT`` is 0) for as long as the node lives; then each child
(``multiprocessing``, spawn) binds the same port the same way and listens, and the kernel
spreads new connections across the listening children. Each child runs the node that
``edge_node`` builds (the composition root's, passed in so that this supervisor knows
nothing of the other services): only ``realtime``, without gRPC, with its own hub,
database and Redis pools and limits;
it sends through IngestService over gRPC — this node's own when it runs ingest (one
ingest and one topic fan-out per node), else ``NOTIFY_INGEST_TARGET``.

Live events cross processes (and nodes) through Redis pub/sub, hence Redis is required.
A child that dies is started again, after a back-off that grows while it keeps dying; the
presence entries of its connections expire within ``NOTIFY_PRESENCE_TTL`` and come back
when the users reconnect, to whichever process the kernel hands them. On stop every child
gets SIGTERM and drains its connections (close 1001) within ``NOTIFY_SHUTDOWN_GRACE``.
A child also stops when the node process disappears (its end of a pipe closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Generic, Protocol, TypeVar

from notify_core.config import Settings
from notify_core.constants import (
    EDGE_RESTART_BACKOFF_SECONDS,
    EDGE_START_TIMEOUT_SECONDS,
)
from notify_core.errors import ConfigError
from realtime_svc.edge_server import bind_sockets
from realtime_svc.limits import edge_limits

log = logging.getLogger(__name__)

_STOP_MARGIN_SECONDS = 5.0
"""Beyond the grace period, how long a child gets to exit before it is killed."""
_HEALTHY_AFTER_SECONDS = 30.0
"""A child that ran this long before dying is restarted after the shortest back-off."""


class EdgeNode(Protocol):
    """What an edge process runs: started, then stopped on SIGTERM."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Settings)
"""The node's settings: the core's, or a richer kind the factory reads."""

EdgeNodeFactory = Callable[[S, list[socket.socket]], EdgeNode]
"""Builds an edge process's node on its settings and its listening sockets. It crosses
into the child process (spawn): a module-level function, so that it pickles."""


def loopback_target(host: str, port: int) -> str:
    """``host:port`` for reaching a server listening on ``host`` from this machine."""
    if host in ("", "0.0.0.0"):
        return f"127.0.0.1:{port}"
    if host == "::":
        return f"[::1]:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclasses.dataclass
class _Child:
    slot: int
    process: BaseProcess
    pipe: Connection
    """The node's end: the child sends its pid once it listens; EOF means it is gone."""


class EdgeProcesses(Generic[S]):
    """Starts, watches, restarts and stops the edge processes of one node."""

    def __init__(self, settings: S, edge_node: EdgeNodeFactory[S], *, local_ingest: bool) -> None:
        if settings.redis_url is None:
            raise ConfigError(
                f"NOTIFY_EDGE_PROCESSES={settings.edge_processes} needs NOTIFY_REDIS_URL: "
                "edge processes share live events and presence through Redis"
            )
        if not local_ingest and not settings.ingest_target:
            raise ConfigError(
                "NOTIFY_INGEST_TARGET must name IngestService (host:port) when the edge "
                "runs without the ingest service"
            )
        if not settings.api_keys:
            raise ConfigError(
                f"NOTIFY_EDGE_PROCESSES={settings.edge_processes} needs NOTIFY_API_KEYS: "
                "edge processes call IngestService with one of them"
            )
        edge_limits(settings)  # refuse to start here rather than in every child
        self._settings = settings
        self._edge_node = edge_node
        self._local_ingest = local_ingest
        self._held = bind_sockets(settings.host, settings.http_port, reuse_port=True)
        self.port = int(self._held[0].getsockname()[1])
        self._ctx = multiprocessing.get_context("spawn")
        self._children: dict[int, _Child] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [c.process.pid for c in self._children.values() if c.process.pid is not None]

    async def start(self, grpc_port: int) -> None:
        """Start every child and return once each listens; raise if one fails to."""
        s = self._settings
        target = loopback_target(s.host, grpc_port) if self._local_ingest else str(s.ingest_target)
        self._child_settings = dataclasses.replace(s, http_port=self.port, ingest_target=target)
        try:
            children = [self._spawn(slot) for slot in range(s.edge_processes)]
            async with asyncio.timeout(EDGE_START_TIMEOUT_SECONDS):
                for child in children:
                    await self._until_listening(child)
        except BaseException:
            await self.stop()
            raise
        self._watchers = [
            asyncio.create_task(self._watch(c), name=f"edge-{c.slot}") for c in children
        ]
        log.info("edge processes listening on :%d: pids %s", self.port, self.pids)

    async def stop(self) -> None:
        """SIGTERM to every child; wait for them to drain (the grace period, then a
        margin), kill what is left."""
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        children = list(self._children.values())
        for child in children:
            if child.process.is_alive():
                child.process.terminate()
        limit = self._settings.shutdown_grace + _STOP_MARGIN_SECONDS
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await asyncio.gather(*(_exited(c.process) for c in children))
        for child in children:
            if child.process.is_alive():
                log.error("edge process %s did not exit within %.0f s: killed", child, limit)
                child.process.kill()
            await asyncio.to_thread(child.process.join, 5)
            child.pipe.close()
        self._children.clear()
        for sock in self._held:
            sock.close()

    def _spawn(self, slot: int) -> _Child:
        ours, theirs = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=run_edge_process,
            args=(self._child_settings, self._edge_node, theirs),
            name=f"notify-edge-{slot}",
            daemon=True,
        )
        process.start()
        theirs.close()
        child = _Child(slot, process, ours)
        self._children[slot] = child
        return child

    async def _until_listening(self, child: _Child) -> None:
        await _readable(child.pipe.fileno())
        try:
            pid = child.pipe.recv()
        except EOFError:
            child.process.join(5)
            raise OSError(
                f"edge process {child.slot} exited with {child.process.exitcode} while "
                "starting (its log says why)"
            ) from None
        log.info("edge process %d listening (pid %s)", child.slot, pid)

    async def _watch(self, child: _Child) -> None:
        """Restart the child of this slot each time it dies, until the node stops."""
        loop = asyncio.get_running_loop()
        first, longest = EDGE_RESTART_BACKOFF_SECONDS
        backoff = first
        while not self._stopping:
            started = loop.time()
            await _exited(child.process)
            child.pipe.close()
            if self._stopping:
                return
            if loop.time() - started >= _HEALTHY_AFTER_SECONDS:
                backoff = first
            log.warning(
                "edge process %d (pid %s) exited with %s; starting another in %.1f s",
                child.slot,
                child.process.pid,
                child.process.exitcode,
                backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, longest)
            child = self._spawn(child.slot)
            try:
                await self._until_listening(child)
            except OSError as exc:
                log.error("%s", exc)


async def _readable(fd: int) -> None:
    """Wait until ``fd`` is readable (data, or the other end closed)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _exited(process: BaseProcess) -> None:
    """Wait until ``process`` has exited (its sentinel becomes readable)."""
    if process.exitcode is None:
        await _readable(process.sentinel)
    await asyncio.to_thread(process.join, 5)


# --- the child side ------------------------------------------------------------------------


def run_edge_process(settings: S, edge_node: EdgeNodeFactory[S], pipe: Connection) -> None:
    """Entry point of one edge process: the edge on ``settings.http_port`` (SO_REUSEPORT)
    until SIGTERM, SIGINT or the node process going away."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s[edge %(process)d]: %(message)s",
    )
    try:
        asyncio.run(_serve_edge(settings, edge_node, pipe))
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        raise SystemExit(2) from None
    except OSError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


async def _serve_edge(settings: S, edge_node: EdgeNodeFactory[S], pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sockets = bind_sockets(settings.host, settings.http_port, reuse_port=True)
    node = edge_node(settings, sockets)
    try:
        await node.start()
        pipe.send(os.getpid())
        # Readable only when the node process is gone (it never writes after start).
        loop.add_reader(pipe.fileno(), stop.set)
        await stop.wait()
        loop.remove_reader(pipe.fileno())
    finally:
        await node.stop()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
