"""RealtimeService from a node's backends: the inbox RPCs, and the edge that serves REST,
WebSocket and SSE on this node's HTTP port."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Sequence

from ingest_svc.api import RemoteIngest
from notify_core.auth import Authenticator
from notify_core.cache.base import CacheBackends
from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.errors import ConfigError
from notify_core.inbox_cache import InboxCache
from notify_core.parts import Parts
from notify_core.routes import HttpRoute
from realtime_svc import service
from realtime_svc.edge import create_edge
from realtime_svc.edge_server import EdgeServer
from realtime_svc.hub import Hub
from realtime_svc.inbox import Inbox
from realtime_svc.limits import edge_limits
from realtime_svc.routes import routes as realtime_routes


def rpcs(database: Database, backends: CacheBackends, namespace: str) -> Parts:
    """RealtimeService's RPCs alone (the edge runs elsewhere: in edge processes)."""
    inbox = Inbox(database, InboxCache(backends, namespace))
    return Parts(specs=[service.spec(inbox, backends, namespace)])


def remote_ingest(settings: Settings) -> RemoteIngest:
    """IngestService over gRPC at NOTIFY_INGEST_TARGET, for an edge without a local one."""
    if not settings.ingest_target:
        raise ConfigError(
            "NOTIFY_INGEST_TARGET must name IngestService (host:port) when the "
            "edge runs without the ingest service"
        )
    if not settings.api_keys:
        raise ConfigError("NOTIFY_API_KEYS is needed to call IngestService")
    return RemoteIngest(settings.ingest_target, sorted(settings.api_keys)[0])


async def assemble_edge(
    settings: Settings,
    *,
    auth: Authenticator,
    database: Database,
    backends: CacheBackends,
    ready: Callable[[], Awaitable[None]],
    routes: Sequence[HttpRoute],
    sockets: list[socket.socket] | None,
) -> tuple[Parts, EdgeServer]:
    """The service's parts, and its edge server (not started yet) serving the service's own
    routes and ``routes``, those of the services below it."""
    inbox = Inbox(database, InboxCache(backends, settings.namespace))
    hub = Hub(backends, settings.namespace, edge_limits(settings))
    await hub.start()
    parts = Parts(specs=[service.spec(inbox, backends, settings.namespace)], closers=[hub])
    own = realtime_routes(auth, inbox, hub, ready, queue_limit=settings.ws_send_queue)
    app = create_edge(auth, [*own, *routes])
    return parts, EdgeServer(app, hub, settings, sockets)
