"""What one service adds to the process that runs it.

Each ``*_svc/assemble.py`` builds its service from the backends a node shares and answers
:class:`Parts`; the composition root (``notify_app``) serves the specs on the node's gRPC
server, runs the tasks until the node stops, then closes the closers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from notify_core.grpc_server import ServiceSpec

Task = Callable[[], Coroutine[Any, Any, None]]
"""Background work: called once when the node starts, cancelled when it stops."""


class Closer(Protocol):
    """Something to close when the node stops (a pool, a connection, a hub)."""

    async def close(self) -> None: ...


@dataclass
class Parts:
    """A service's contribution to a node."""

    specs: list[ServiceSpec] = field(default_factory=list)
    """Its gRPC services."""
    tasks: dict[str, Task] = field(default_factory=dict)
    """Its background work, by task name."""
    closers: list[Closer] = field(default_factory=list)
    """Closed after the tasks have stopped, the last added first."""
