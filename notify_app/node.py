"""A node: the chosen services of Notify in one process, on one event loop.

``notify up`` runs every service plus the edge; ``notify serve NAME`` runs one. The
backends come from the settings alone (embedded when no Redis/RabbitMQ URL is given); each
service is built from them by its entry in :data:`~notify_app.services.ASSEMBLY`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from notify_app.services import ASSEMBLY, SERVICES, Wiring
from notify_app.settings import NodeSettings
from notify_app.workers import moved, worker_processes
from notify_core.auth import Authenticator
from notify_core.cache.base import CacheBackends
from notify_core.cache.factory import create_cache_backends
from notify_core.constants import EDGE_DATABASE_POOL, QUEUES
from notify_core.db.engine import Database
from notify_core.errors import ConfigError
from notify_core.grpc_server import ServiceSpec, create_server, mark_not_serving, mark_serving
from notify_core.parts import Closer, Parts
from notify_core.queue.base import WorkQueue
from notify_core.queue.factory import create_queue
from preference_svc.api import PreferenceStore
from template_svc.api import Templates

if TYPE_CHECKING:
    # Types only: an edge process imports what it runs (see notify_app/services.py).
    from delivery_svc.transport.sns import SnsHttp
    from digest_svc.scheduler import DigestService
    from notify_core.processes import ChildProcesses
    from realtime_svc.edge_processes import EdgeProcesses
    from realtime_svc.edge_server import EdgeServer
    from router_svc.scheduler import Scheduler

log = logging.getLogger(__name__)


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
    workers: int = 0
    """Worker processes to run the router's, scheduler's and digests' tasks in (``notify
    up`` passes ``NOTIFY_WORKER_PROCESSES``); 0: they run here."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closers: list[Closer] = field(default_factory=list)
    _edge: EdgeServer | None = None
    _edges: EdgeProcesses[NodeSettings] | None = None
    _workers: ChildProcesses | None = None

    async def start(self) -> None:
        s = self.settings
        unknown = set(self.services) - set(SERVICES)
        if unknown:
            raise ConfigError(
                f"unknown service {sorted(unknown)[0]!r}; one of {', '.join(SERVICES)}"
            )
        if self.migrate:
            from notify_core.db.migrate import upgrade  # alembic: only where it migrates

            await asyncio.to_thread(upgrade, s.database_url)
        wiring = await self._open_backends()
        elsewhere = moved(s, self.services, self.workers)
        specs: list[ServiceSpec] = []
        for name, assemble in ASSEMBLY.items():
            if name in self.services:
                specs.extend(self._add(await assemble(wiring), run=name not in elsewhere))
        self.http_port = wiring.http_port
        self.scheduler, self.digest = wiring.scheduler, wiring.digest
        self._edge, self._edges = wiring.edge, wiring.edges
        self._names = [spec.full_name for spec in specs]
        if self.serve_grpc:
            self._grpc, self.grpc_port, self._health = create_server(
                specs, f"{s.host}:{s.grpc_port}", wiring.auth
            )
            # The servicer starts out SERVING as a whole; not until every part is up.
            await mark_not_serving(self._health, [])
            await self._grpc.start()
        if self._edges is not None:
            await self._edges.start(self.grpc_port)
        if elsewhere:
            self._workers = worker_processes(s, self.workers)
            await self._workers.start(s, elsewhere, wiring.public_url)
            log.info("worker processes for %s: pids %s", ",".join(elsewhere), self._workers.pids)
        if self.serve_grpc:
            # Serving once every child is up too: the health check means the whole node.
            await mark_serving(self._health, self._names)
        log.info(
            "node up: services=%s http=%s grpc=%s",
            ",".join(self.services),
            self.http_port or "-",
            self.grpc_port,
        )

    async def _open_backends(self) -> Wiring:
        """The database, queue, cache and the stores every service here shares."""
        s = self.settings
        self.database = db = Database(
            s.database_url, pool_size=self.database_pool, sqlite_synchronous=s.sqlite_synchronous
        )
        self.queue = queue = create_queue(s.amqp_url, db, s.namespace, list(QUEUES))
        await queue.start()
        self.backends = backends = create_cache_backends(s.redis_url, s.namespace)
        self.preferences = PreferenceStore(db, backends.cache, s.namespace)
        self.templates = Templates(db)
        return Wiring(
            settings=s,
            auth=Authenticator(s.api_keys, s.jwt_secret),
            database=db,
            queue=queue,
            backends=backends,
            preferences=self.preferences,
            templates=self.templates,
            ready=self.ready,
            edge_node=edge_node,
            edge_sockets=self.edge_sockets,
            sns_http=self.sns_http,
        )

    def _add(self, parts: Parts, *, run: bool = True) -> list[ServiceSpec]:
        """Start a service's tasks (unless ``run`` is false: they run in worker
        processes), keep its closers; answer its gRPC specs."""
        for name, task_main in parts.tasks.items() if run else ():
            task = asyncio.ensure_future(task_main())
            task.set_name(name)
            self._tasks.append(task)
        self._closers.extend(parts.closers)
        return parts.specs

    @property
    def edge(self) -> EdgeServer | None:
        """The edge this node serves itself (None: none, or only in edge processes)."""
        return self._edge

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
        if self._workers is not None:
            await self._workers.stop()
        await _cancel_all(self._tasks)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer.close()
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
