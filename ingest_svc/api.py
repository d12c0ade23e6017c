"""Ingest's public module: what the other services use of ingest, and the only ingest
module they import (checked by `lint-imports`, `[tool.importlinter]`).

- the edge reaches a remote ingest over gRPC with `RemoteIngest`;
- the router's scheduler builds the route job of a scheduled send that falls due with
  `route_messages`, the same jobs ingest stages for new notifications.

Each name loads from its home module when first imported (`notify_core/lazy.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notify_core.lazy import lazy_exports

if TYPE_CHECKING:
    from ingest_svc.client import RemoteIngest
    from ingest_svc.core import route_messages

__all__ = [
    "RemoteIngest",
    "route_messages",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "ingest_svc.client": ("RemoteIngest",),
        "ingest_svc.core": ("route_messages",),
    },
)
