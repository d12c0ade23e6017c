"""``NOTIFY_WORKER_PROCESSES``: the background work of ``notify up`` in child processes.

The node process keeps ingest, every gRPC service and the edge; the router, the scheduler
(due scheduled sends and held deliveries) and the digest runs consume their queues in
worker processes instead, so the operating system can run them on another core than the
one accepting sends. A worker process is a node of those services without gRPC or HTTP,
on the same backends: the queues are competing consumers, live events and presence cross
processes through Redis, and links in messages point at the parent's edge. The children
are supervised by :class:`notify_core.processes.ChildProcesses` (restarted when one dies;
a routing job a dead worker held goes back to the queue and is routed once).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from multiprocessing.connection import Connection

from notify_app.settings import NodeSettings
from notify_core.errors import ConfigError
from notify_core.processes import ChildProcesses, run_child

WORKER_SERVICES = ("router", "digest")
"""The services whose background tasks move to the worker processes (their RPCs stay)."""


def moved(settings: NodeSettings, services: tuple[str, ...], workers: int) -> tuple[str, ...]:
    """The services among ``services`` whose tasks run in ``workers`` worker processes
    (none when there are none); refuses a layout that cannot share the work."""
    if workers == 0:
        return ()
    if settings.redis_url is None:
        raise ConfigError(
            f"NOTIFY_WORKER_PROCESSES={workers} needs NOTIFY_REDIS_URL: worker processes "
            "publish live events and read presence through Redis"
        )
    return tuple(s for s in services if s in WORKER_SERVICES)


def worker_processes(settings: NodeSettings, count: int) -> ChildProcesses:
    return ChildProcesses("worker", count, run_worker_process, grace=settings.shutdown_grace)


def run_worker_process(
    settings: NodeSettings, services: tuple[str, ...], public_url: str | None, pipe: Connection
) -> None:
    """Entry point of one worker process: ``services`` with their tasks, no servers."""
    from notify_app.node import Node

    own = dataclasses.replace(settings, public_url=public_url)
    node = partial(Node, own, services=services, migrate=False, serve_grpc=False)
    run_child("worker", settings.log_level, node, pipe)
