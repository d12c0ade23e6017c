"""The preference service's public module: what the other services use of preferences,
and the only preference module they import (checked by `lint-imports`,
`[tool.importlinter]`).

- `PreferenceStore` (cached reads of a user's preferences and devices) for the router and
  delivery; `StoredPreferences` and `from_row` for the digest store, which reads the
  preference rows in its own query;
- `check_topic`, the topic name check, for ingest's topic sends;
- the unsubscribe link and headers of every email: `make_token`, `unsubscribe_url`,
  `list_unsubscribe_headers`.

Each name loads from its home module when first imported (`notify_core/lazy.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notify_core.lazy import lazy_exports

if TYPE_CHECKING:
    from preference_svc.device_lifecycle import (
        Target,
        active_devices,
        deactivate,
        deactivate_stale,
        record_use,
    )
    from preference_svc.store import PreferenceStore, StoredPreferences, from_row
    from preference_svc.topics import check_topic
    from preference_svc.unsubscribe import list_unsubscribe_headers, make_token, unsubscribe_url

__all__ = [
    "PreferenceStore",
    "StoredPreferences",
    "Target",
    "active_devices",
    "check_topic",
    "deactivate",
    "deactivate_stale",
    "from_row",
    "list_unsubscribe_headers",
    "make_token",
    "record_use",
    "unsubscribe_url",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "preference_svc.device_lifecycle": (
            "Target",
            "active_devices",
            "deactivate",
            "deactivate_stale",
            "record_use",
        ),
        "preference_svc.store": ("PreferenceStore", "StoredPreferences", "from_row"),
        "preference_svc.topics": ("check_topic",),
        "preference_svc.unsubscribe": ("list_unsubscribe_headers", "make_token", "unsubscribe_url"),
    },
)
