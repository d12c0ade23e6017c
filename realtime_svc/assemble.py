"""RealtimeService from a node's backends: the inbox RPCs, and the edge that serves REST,
WebSocket and SSE on this node's HTTP port."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from delivery_svc.provider_event_routes import ProviderWebhooks
from ingest_svc.client import IngestApi, RemoteIngest
from notify_core.auth import Authenticator
from notify_core.cache.base import CacheBackends
from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.errors import ConfigError
from notify_core.parts import Parts
from preference_svc.store import PreferenceStore
from realtime_svc import service
from realtime_svc.edge import create_edge
from realtime_svc.edge_server import EdgeServer
from realtime_svc.hub import Hub
from realtime_svc.inbox import Inbox
from realtime_svc.limits import edge_limits
from template_svc.templates import Templates


def rpcs(database: Database, backends: CacheBackends, namespace: str) -> Parts:
    """RealtimeService's RPCs alone (the edge runs elsewhere: in edge processes)."""
    return Parts(specs=[service.spec(Inbox(database), backends, namespace)])


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
    ingest: IngestApi | None,
    database: Database,
    backends: CacheBackends,
    preferences: PreferenceStore,
    templates: Templates,
    ready: Callable[[], Awaitable[None]],
    allow_http_webhooks: bool,
    provider_webhooks: ProviderWebhooks,
    sockets: list[socket.socket] | None,
) -> tuple[Parts, EdgeServer]:
    """The service's parts, and its edge server (not started yet). ``ingest`` None: send
    through IngestService at NOTIFY_INGEST_TARGET."""
    remote: RemoteIngest | None = None
    if ingest is None:
        ingest = remote = remote_ingest(settings)
    inbox = Inbox(database)
    hub = Hub(backends, settings.namespace, edge_limits(settings))
    await hub.start()
    parts = Parts(specs=[service.spec(inbox, backends, settings.namespace)], closers=[hub])
    if remote is not None:
        parts.closers.append(remote)
    app = create_edge(
        auth=auth,
        ingest=ingest,
        inbox=inbox,
        hub=hub,
        ready=ready,
        preferences=preferences,
        allow_http_webhooks=allow_http_webhooks,
        templates=templates,
        database=database,
        ws_send_queue=settings.ws_send_queue,
        signing_secret=settings.signing_secret,
        public_url=settings.public_url,
        provider_webhooks=provider_webhooks,
    )
    return parts, EdgeServer(app, hub, settings, sockets)
