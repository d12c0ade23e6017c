"""The router's public module: what the other services use of the router, and the only
router module they import (checked by `lint-imports`, `[tool.importlinter]`).

Digests decide as the router does: `local_instant` (quiet-hours time zones) for the digest
schedule; `Preferences`, `Question` and `ask_rate_limits` for the digest runner's rate
limits, asked in one round as the router asks them.

Each name loads from its home module when first imported (`notify_core/lazy.py`), so the
pure digest schedule imports `router_svc/quiet_hours.py` and none of the router's stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notify_core.lazy import lazy_exports

if TYPE_CHECKING:
    from router_svc.batch import Question
    from router_svc.inputs import ask_rate_limits
    from router_svc.plan import Preferences
    from router_svc.quiet_hours import local_instant

__all__ = [
    "Preferences",
    "Question",
    "ask_rate_limits",
    "local_instant",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "router_svc.batch": ("Question",),
        "router_svc.inputs": ("ask_rate_limits",),
        "router_svc.plan": ("Preferences",),
        "router_svc.quiet_hours": ("local_instant",),
    },
)
