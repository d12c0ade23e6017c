"""PreferenceService from a node's backends: preferences, devices and topics."""

from __future__ import annotations

from notify_core.db.engine import Database
from notify_core.parts import Parts
from preference_svc import service
from preference_svc.devices import DeviceStore
from preference_svc.store import PreferenceStore
from preference_svc.topics import TopicStore


def assemble(
    database: Database, preferences: PreferenceStore, *, allow_http_webhooks: bool
) -> Parts:
    spec = service.spec(
        preferences,
        DeviceStore(database, preferences),
        TopicStore(database),
        allow_http_webhooks=allow_http_webhooks,
    )
    return Parts(specs=[spec])
