"""A node: the chosen services of Notify in one process, on one event loop.

``notify up`` runs every service plus the edge; ``notify serve NAME`` runs one. The
backends come from the settings alone (embedded when no Redis/RabbitMQ URL is given).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from notify_app.settings import NodeSettings
from notify_core.auth import Authenticator
from notify_core.cache.base import CacheBackends
from notify_core.cache.factory import create_cache_backends
from notify_core.constants import EDGE_DATABASE_POOL, QUEUES
from notify_core.db.engine import Database
from notify_core.db.migrate import upgrade
from notify_core.errors import ConfigError
from notify_core.grpc_server import ServiceSpec, create_server, mark_not_serving, mark_serving
from notify_core.queue.base import WorkQueue
from notify_core.queue.factory import create_queue

if TYPE_CHECKING:
    from delivery_svc.provider_event_routes import SnsHttp
    from delivery_svc.worker import DeliveryWorker
    from digest_svc.scheduler import DigestService
    from preference_svc.store import PreferenceStore
    from realtime_svc.edge_processes import EdgeProcesses
    from realtime_svc.edge_server import EdgeServer
    from router_svc.scheduler import Scheduler
    from template_svc.templates import Templates

log = logging.getLogger(__name__)

SERVICES = ("ingest", "router", "preference", "template", "delivery", "realtime", "digest")


@dataclass
class Node:
    settings: NodeSettings
    services: tuple[str, ...] = SERVICES
    migrate: bool = True
    http_port: int = 0
    grpc_port: int = 0
    database: Database | None = None
    queue: WorkQueue | None = None
    backends: CacheBackends | None = None
    preferences: PreferenceStore | None = None
    templates: Templates | None = None
    scheduler: Scheduler | None = None
    digest: DigestService | None = None
    sns_http: SnsHttp | None = None
    """The HTTP calls of the SES webhook (certificates, subscribe URLs); None: the real ones."""
    edge_sockets: list[socket.socket] | None = None
    """An edge process's sockets (bound with SO_REUSEPORT); None: bind NOTIFY_HTTP_PORT here,
    or start NOTIFY_EDGE_PROCESSES edge processes when that is more than one."""
    serve_grpc: bool = True
    database_pool: int = 10
    """Database connections kept (as many more may open under a burst)."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closers: list[object] = field(default_factory=list)
    _edge: EdgeServer | None = None
    _edges: EdgeProcesses[NodeSettings] | None = None

    async def start(self) -> None:
        s = self.settings
        unknown = set(self.services) - set(SERVICES)
        if unknown:
            raise ConfigError(
                f"unknown service {sorted(unknown)[0]!r}; one of {', '.join(SERVICES)}"
            )
        if self.migrate:
            await asyncio.to_thread(upgrade, s.database_url)
        auth = Authenticator(s.api_keys, s.jwt_secret)
        self.database = db = Database(
            s.database_url, pool_size=self.database_pool, sqlite_synchronous=s.sqlite_synchronous
        )
        self.queue = queue = create_queue(s.amqp_url, db, s.namespace, list(QUEUES))
        await queue.start()
        self.backends = backends = create_cache_backends(s.redis_url, s.namespace)
        from preference_svc.store import PreferenceStore

        # One store per node: every service here reads preferences through it.
        self.preferences = prefs = PreferenceStore(db, backends.cache, s.namespace)
        from template_svc.templates import Templates

        # One per node too: its RPCs, the edge and the delivery workers share its cache.
        self.templates = templates = Templates(db)
        specs: list[ServiceSpec] = []

        from ingest_svc import service as ingest_service
        from ingest_svc.client import IngestApi, LocalIngest, RemoteIngest
        from ingest_svc.core import Ingest
        from ingest_svc.topics import TopicSends

        ingest_api: IngestApi | None = None
        if "ingest" in self.services:
            ingest = Ingest(db, queue)
            await ingest.start()
            self._closers.append(ingest)
            topics = TopicSends(db, queue, ingest)
            ingest_api = LocalIngest(ingest, topics)
            specs.append(ingest_service.spec(ingest, topics))
            self._spawn(topics.run(), "fanout")
        if "router" in self.services:
            from router_svc import service as router_service
            from router_svc.inputs import Routing
            from router_svc.worker import Router

            router = Router(
                db,
                queue,
                backends,
                prefs,
                s.namespace,
                Routing.from_settings(s),
            )
            self._spawn(router.run(), "router")
            from router_svc.scheduler import Scheduler

            scheduler = Scheduler(
                db,
                queue,
                backends,
                prefs,
                s.namespace,
                Routing.from_settings(s),
                interval=s.scheduler_interval,
            )
            self.scheduler = scheduler
            self._spawn(scheduler.run(), "scheduler")
            specs.append(router_service.spec(db))
        if "preference" in self.services:
            from preference_svc import service as preference_service
            from preference_svc.devices import DeviceStore
            from preference_svc.topics import TopicStore

            specs.append(
                preference_service.spec(
                    prefs,
                    DeviceStore(db, prefs),
                    TopicStore(db),
                    allow_http_webhooks=s.webhook.allow_http,
                )
            )
        if "template" in self.services:
            from template_svc import service as template_service

            specs.append(template_service.spec(templates))
        if "realtime" in self.services and s.edge_processes > 1 and self.edge_sockets is None:
            # The edge runs in child processes, started once gRPC is up; RPCs stay here.
            from realtime_svc import service as realtime_service
            from realtime_svc.edge_processes import EdgeProcesses
            from realtime_svc.inbox import Inbox

            self._edges = EdgeProcesses(s, edge_node, local_ingest=ingest_api is not None)
            self.http_port = self._edges.port
            specs.append(realtime_service.spec(Inbox(db), backends, s.namespace))
        elif "realtime" in self.services:
            from delivery_svc.provider_event_routes import ProviderWebhooks
            from realtime_svc import service as realtime_service
            from realtime_svc.edge import create_edge
            from realtime_svc.edge_server import EdgeServer
            from realtime_svc.hub import Hub
            from realtime_svc.inbox import Inbox
            from realtime_svc.limits import edge_limits

            inbox = Inbox(db)
            hub = Hub(backends, s.namespace, edge_limits(s))
            await hub.start()
            self._closers.append(hub)
            specs.append(realtime_service.spec(inbox, backends, s.namespace))
            if ingest_api is None:
                if not s.ingest_target:
                    raise ConfigError(
                        "NOTIFY_INGEST_TARGET must name IngestService (host:port) when the "
                        "edge runs without the ingest service"
                    )
                if not s.api_keys:
                    raise ConfigError("NOTIFY_API_KEYS is needed to call IngestService")
                remote = RemoteIngest(s.ingest_target, sorted(s.api_keys)[0])
                self._closers.append(remote)
                ingest_api = remote
            app = create_edge(
                auth=auth,
                ingest=ingest_api,
                inbox=inbox,
                hub=hub,
                ready=self.ready,
                preferences=prefs,
                allow_http_webhooks=s.webhook.allow_http,
                templates=templates,
                database=db,
                ws_send_queue=s.ws_send_queue,
                signing_secret=s.signing_secret,
                public_url=s.public_url,
                provider_webhooks=ProviderWebhooks.from_settings(s.email, self.sns_http),
            )
            self._edge = EdgeServer(app, hub, s, self.edge_sockets)
            self.http_port = await self._edge.start()

        if "delivery" in self.services:
            from delivery_svc import service as delivery_service

            workers = await self._delivery_workers(prefs)
            specs.append(delivery_service.spec(db, queue, workers))
        if "digest" in self.services:
            from digest_svc import service as digest_service
            from digest_svc.assemble import DigestConfig, build_digest_service

            # After the edge: digest emails link to it (unsubscribe) when no public URL is set.
            self.digest, digest_email = build_digest_service(
                DigestConfig(s, s.email, s.digest), db, backends, templates, self.public_url
            )
            self._closers.append(digest_email)
            self._spawn(self.digest.run(), "digest")
            specs.append(digest_service.spec(db, self.digest))
        self._names = [spec.full_name for spec in specs]
        if self.serve_grpc:
            self._grpc, self.grpc_port, self._health = create_server(
                specs, f"{s.host}:{s.grpc_port}", auth
            )
            await self._grpc.start()
            await mark_serving(self._health, self._names)
        if self._edges is not None:
            await self._edges.start(self.grpc_port)
        log.info(
            "node up: services=%s http=%s grpc=%s",
            ",".join(self.services),
            self.http_port or "-",
            self.grpc_port,
        )

    @property
    def public_url(self) -> str | None:
        """Where links in messages point: NOTIFY_PUBLIC_URL, else this node's edge."""
        if self.settings.public_url:
            return self.settings.public_url
        if not self.http_port:
            return None
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        return f"http://{host}:{self.http_port}"

    async def _delivery_workers(self, prefs: PreferenceStore) -> list[DeliveryWorker]:
        """The channel workers this node runs (started here, stopped with the node)."""
        from delivery_svc.assemble import build_workers

        assert self.database is not None and self.queue is not None
        workers, closers = await build_workers(
            self.settings,
            self.settings.email,
            self.settings.webhook,
            self.database,
            self.queue,
            prefs,
            self.public_url,
            self.templates,
        )
        self._closers.extend(closers)
        for worker in workers:
            self._spawn(worker.run(), f"deliver-{worker.channel}")
        return workers

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.append(task)

    async def ready(self) -> None:
        assert self.database and self.queue and self.backends
        await self.database.ping()
        await self.queue.ping()
        await self.backends.ping()

    async def stop(self) -> None:
        if self.serve_grpc:
            with contextlib.suppress(Exception):
                await mark_not_serving(self._health, self._names)
        # Live connections first (within NOTIFY_SHUTDOWN_GRACE): they may still call ingest.
        if self._edge is not None:
            await self._edge.stop()
        if self._edges is not None:
            await self._edges.stop()
        if self.serve_grpc:
            with contextlib.suppress(Exception):
                await self._grpc.stop(grace=2.0)
        await _cancel_all(self._tasks)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer.close()  # type: ignore[attr-defined]
        if self.queue is not None:
            await self.queue.close()
        if self.backends is not None:
            await self.backends.close()
        if self.database is not None:
            await self.database.close()


def edge_node(settings: NodeSettings, sockets: list[socket.socket]) -> Node:
    """The node of one edge process: only ``realtime``, on ``sockets``, without gRPC."""
    return Node(
        settings,
        services=("realtime",),
        migrate=False,
        serve_grpc=False,
        edge_sockets=sockets,
        database_pool=EDGE_DATABASE_POOL,
    )


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel until each task is done: a library may swallow one cancellation (seen with a
    redis-py pipeline finishing as the cancel arrived), after which the task carries on."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(50):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
    log.error("tasks still running after shutdown: %s", [t.get_name() for t in pending])
