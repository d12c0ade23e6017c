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
The children are started, watched, restarted and stopped by
:class:`notify_core.processes.ChildProcesses`. The presence entries of a dead child's
connections expire within ``NOTIFY_PRESENCE_TTL`` and come back when the users reconnect,
to whichever process the kernel hands them. On stop every child gets SIGTERM and drains
its connections (close 1001) within ``NOTIFY_SHUTDOWN_GRACE``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from typing import Generic, Protocol, TypeVar

from notify_core.config import Settings
from notify_core.errors import ConfigError
from notify_core.processes import ChildProcesses, run_child
from realtime_svc.edge_server import bind_sockets
from realtime_svc.limits import edge_limits

log = logging.getLogger(__name__)


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
        self._children = ChildProcesses(
            "edge", settings.edge_processes, run_edge_process, grace=settings.shutdown_grace
        )

    @property
    def pids(self) -> list[int]:
        return self._children.pids

    async def start(self, grpc_port: int) -> None:
        """Start every child and return once each listens; raise if one fails to."""
        s = self._settings
        target = loopback_target(s.host, grpc_port) if self._local_ingest else str(s.ingest_target)
        child_settings = dataclasses.replace(s, http_port=self.port, ingest_target=target)
        try:
            await self._children.start(child_settings, self._edge_node)
        except BaseException:
            self._release()
            raise
        log.info("edge processes listening on :%d: pids %s", self.port, self.pids)

    async def stop(self) -> None:
        """Stop every child (each drains its connections), then free the port."""
        await self._children.stop()
        self._release()

    def _release(self) -> None:
        for sock in self._held:
            sock.close()


# --- the child side ------------------------------------------------------------------------


def run_edge_process(settings: S, edge_node: EdgeNodeFactory[S], pipe: Connection) -> None:
    """Entry point of one edge process: the edge on ``settings.http_port`` (SO_REUSEPORT)
    until SIGTERM, SIGINT or the node process going away."""
    run_child("edge", settings.log_level, partial(_EdgeChild, settings, edge_node), pipe)


class _EdgeChild(Generic[S]):
    """An edge node on sockets of its own, bound to the shared port before it starts."""

    def __init__(self, settings: S, edge_node: EdgeNodeFactory[S]) -> None:
        self._sockets = bind_sockets(settings.host, settings.http_port, reuse_port=True)
        self._node = edge_node(settings, self._sockets)

    async def start(self) -> None:
        await self._node.start()

    async def stop(self) -> None:
        try:
            await self._node.stop()
        finally:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
