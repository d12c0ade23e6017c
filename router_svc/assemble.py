"""RouterService from a node's backends: the routing worker and the scheduler of held work."""

from __future__ import annotations

from notify_core.cache.base import CacheBackends
from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.parts import Parts
from notify_core.queue.base import WorkQueue
from preference_svc.api import PreferenceStore
from router_svc import service
from router_svc.inputs import Routing
from router_svc.scheduler import Scheduler
from router_svc.worker import Router


def assemble(
    settings: Settings,
    database: Database,
    queue: WorkQueue,
    backends: CacheBackends,
    preferences: PreferenceStore,
) -> tuple[Parts, Scheduler]:
    """The service's parts, and its scheduler (which tests drive)."""
    routing = Routing.from_settings(settings)
    namespace = settings.namespace
    router = Router(database, queue, backends, preferences, namespace, routing)
    scheduler = Scheduler(
        database,
        queue,
        backends,
        preferences,
        namespace,
        routing,
        interval=settings.scheduler_interval,
    )
    parts = Parts(
        specs=[service.spec(database)],
        tasks={"router": router.run, "scheduler": scheduler.run},
    )
    return parts, scheduler
