"""The table of services: how each one is built from what a node shares.

Each entry calls the service's own ``assemble`` with the backends and settings it needs and
answers its :class:`~notify_core.parts.Parts`; results other services use (the local ingest
client for the edge, the edge's port for links in messages) are left on the
:class:`Wiring`. The table is in start order: ingest before the edge (it sends through
it), the edge before delivery and digests (their links point at it when
NOTIFY_PUBLIC_URL is unset).

Each entry imports its service's ``assemble`` when it runs, and only the edge imports the
routes it serves: an edge process (``NOTIFY_EDGE_PROCESSES``) or a worker process loads the
services it runs, not every delivery provider's library or the migrations.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest_svc.client import IngestApi, RemoteIngest
from notify_app.settings import NodeSettings
from notify_core.auth import Authenticator
from notify_core.cache.base import CacheBackends
from notify_core.db.engine import Database
from notify_core.parts import Parts
from notify_core.queue.base import WorkQueue
from notify_core.routes import HttpRoute
from preference_svc.api import PreferenceStore
from realtime_svc.edge_processes import EdgeNodeFactory
from template_svc.api import Templates

if TYPE_CHECKING:
    from delivery_svc.transport.sns import SnsHttp
    from digest_svc.scheduler import DigestService
    from realtime_svc.edge_processes import EdgeProcesses
    from realtime_svc.edge_server import EdgeServer
    from router_svc.scheduler import Scheduler

SERVICES = ("ingest", "router", "preference", "template", "delivery", "realtime", "digest")
"""Every service, in the order ``notify up`` names them."""


@dataclass
class Wiring:
    """What the services of one node share, and what they leave for each other."""

    settings: NodeSettings
    auth: Authenticator
    database: Database
    queue: WorkQueue
    backends: CacheBackends
    preferences: PreferenceStore
    """One store per node: every service here reads preferences through it."""
    templates: Templates
    """One per node too: its RPCs, the edge and the delivery workers share its cache."""
    ready: Callable[[], Awaitable[None]]
    edge_node: EdgeNodeFactory[NodeSettings]
    edge_sockets: list[socket.socket] | None = None
    sns_http: SnsHttp | None = None
    # -- left by the services, in start order --
    ingest: IngestApi | None = None
    scheduler: Scheduler | None = None
    http_port: int = 0
    edge: EdgeServer | None = None
    edges: EdgeProcesses[NodeSettings] | None = None
    digest: DigestService | None = None

    @property
    def public_url(self) -> str | None:
        """Where links in messages point: NOTIFY_PUBLIC_URL, else this node's edge."""
        s = self.settings
        if s.public_url:
            return s.public_url
        if not self.http_port:
            return None
        host = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host
        return f"http://{host}:{self.http_port}"


async def _ingest(w: Wiring) -> Parts:
    from ingest_svc import assemble as ingest

    parts, w.ingest = await ingest.assemble(w.database, w.queue)
    return parts


async def _router(w: Wiring) -> Parts:
    from router_svc import assemble as router

    parts, w.scheduler = router.assemble(w.settings, w.database, w.queue, w.backends, w.preferences)
    return parts


async def _preference(w: Wiring) -> Parts:
    from preference_svc import assemble as preference

    return preference.assemble(
        w.database, w.preferences, allow_http_webhooks=w.settings.webhook.allow_http
    )


async def _template(w: Wiring) -> Parts:
    from template_svc import assemble as template

    return template.assemble(w.templates)


async def _realtime(w: Wiring) -> Parts:
    from realtime_svc import assemble as realtime
    from realtime_svc.edge_processes import EdgeProcesses

    s = w.settings
    if s.edge_processes > 1 and w.edge_sockets is None:
        # The edge runs in child processes, started once gRPC is up; RPCs stay here.
        w.edges = EdgeProcesses(s, w.edge_node, local_ingest=w.ingest is not None)
        w.http_port = w.edges.port
        return realtime.rpcs(w.database, w.backends, s.namespace)
    ingest_api, remote = _edge_ingest(w)
    parts, w.edge = await realtime.assemble_edge(
        s,
        auth=w.auth,
        database=w.database,
        backends=w.backends,
        ready=w.ready,
        routes=_edge_routes(w, ingest_api),
        sockets=w.edge_sockets,
    )
    if remote is not None:
        parts.closers.append(remote)
    w.http_port = await w.edge.start()
    return parts


def _edge_ingest(w: Wiring) -> tuple[IngestApi, RemoteIngest | None]:
    """What the edge sends through: this node's ingest, else IngestService over gRPC (the
    second value, which the node closes)."""
    from realtime_svc import assemble as realtime

    if w.ingest is not None:
        return w.ingest, None
    remote = realtime.remote_ingest(w.settings)
    return remote, remote


def _edge_routes(w: Wiring, ingest_api: IngestApi) -> list[HttpRoute]:
    """The routes of the services below the edge, which it serves beside its own."""
    from delivery_svc.provider_event_routes import ProviderWebhooks
    from delivery_svc.routes import routes as delivery_routes
    from ingest_svc.routes import routes as ingest_routes
    from preference_svc.routes import routes as preference_routes
    from router_svc.routes import routes as router_routes
    from template_svc.routes import routes as template_routes

    s = w.settings
    return [
        *ingest_routes(ingest_api),
        *router_routes(w.database),
        *preference_routes(
            w.database,
            w.preferences,
            allow_http_webhooks=s.webhook.allow_http,
            signing_secret=s.signing_secret,
            public_url=s.public_url,
        ),
        *template_routes(w.templates),
        *delivery_routes(
            w.database,
            signing_secret=s.signing_secret,
            webhooks=ProviderWebhooks.from_settings(s.email, w.sns_http),
            twilio=s.push.sms.get("twilio"),
            public_url=s.public_url,
        ),
    ]


async def _delivery(w: Wiring) -> Parts:
    from delivery_svc import assemble as delivery

    s = w.settings
    return await delivery.assemble(
        s,
        s.email,
        s.webhook,
        s.push,
        w.database,
        w.queue,
        w.preferences,
        w.public_url,
        w.templates,
        digest_concurrency=s.digest.concurrency,
    )


async def _digest(w: Wiring) -> Parts:
    from digest_svc import assemble as digest

    s = w.settings
    config = digest.DigestConfig(s, s.email, s.digest)
    parts, w.digest = digest.assemble(
        config, w.database, w.queue, w.backends, w.templates, w.public_url
    )
    return parts


ASSEMBLY: dict[str, Callable[[Wiring], Awaitable[Parts]]] = {
    "ingest": _ingest,
    "router": _router,
    "preference": _preference,
    "template": _template,
    "realtime": _realtime,
    "delivery": _delivery,
    "digest": _digest,
}
"""How each service is built, in start order."""
