"""PreferenceService's REST routes on the edge: preferences, devices, topics, unsubscribe.

Producer (API key) routes act on the user named in the path; user (JWT) routes act on the
caller (:mod:`notify_core.routes` checks either before a handler runs)::

    GET    /users/{user_id}/preferences           GET    /preferences        → the preferences
    PUT    /users/{user_id}/preferences           PUT    /preferences        (every field optional)
    POST   /users/{user_id}/devices               POST   /devices            → 201 (200 if known)
    GET    /users/{user_id}/devices               GET    /devices
           (?include_inactive=true: deactivated ones too, with deactivated_reason/_at)
    DELETE /users/{user_id}/devices/{device_id}   DELETE /devices/{device_id}

Topics are in :mod:`preference_svc.topic_routes`, unsubscribe links in
:mod:`preference_svc.unsubscribe_routes`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from notify_core.db.engine import Database
from notify_core.http import JSONResponse, bool_param, json_body
from notify_core.routes import PRODUCER, USER, HttpRoute
from preference_svc.devices import DeviceStore, parse_device
from preference_svc.store import PreferenceStore
from preference_svc.topic_routes import topic_routes
from preference_svc.topics import TopicStore
from preference_svc.unsubscribe_routes import unsubscribe_routes
from preference_svc.validate import parse_preferences


def routes(
    database: Database,
    preferences: PreferenceStore,
    *,
    allow_http_webhooks: bool,
    signing_secret: str | None,
    public_url: str | None,
) -> list[HttpRoute]:
    """Every route of the service; ``signing_secret`` and ``public_url`` are those of
    unsubscribe links (:func:`~preference_svc.unsubscribe_routes.unsubscribe_routes`)."""
    return [
        *preference_routes(preferences, allow_http_webhooks=allow_http_webhooks),
        *device_routes(DeviceStore(database, preferences)),
        *topic_routes(TopicStore(database)),
        *unsubscribe_routes(preferences, signing_secret=signing_secret, public_url=public_url),
    ]


def preference_routes(store: PreferenceStore, *, allow_http_webhooks: bool) -> list[HttpRoute]:
    async def get(request: Request, user_id: str) -> Response:
        return JSONResponse((await store.get(user_id)).to_json())

    async def put(request: Request, user_id: str) -> Response:
        update = parse_preferences(
            await json_body(request), allow_http_webhooks=allow_http_webhooks
        )
        return JSONResponse((await store.update(user_id, update)).to_json())

    return [
        HttpRoute("GET", "/preferences", USER, get),
        HttpRoute("PUT", "/preferences", USER, put),
        HttpRoute("GET", "/users/{user_id}/preferences", PRODUCER, get),
        HttpRoute("PUT", "/users/{user_id}/preferences", PRODUCER, put),
    ]


def device_routes(devices: DeviceStore) -> list[HttpRoute]:
    async def register(request: Request, user_id: str) -> Response:
        device, created = await devices.register(user_id, parse_device(await json_body(request)))
        return JSONResponse(device.to_json(), status_code=201 if created else 200)

    async def list_devices(request: Request, user_id: str) -> Response:
        listed = await devices.list(user_id, inactive=bool_param(request, "include_inactive"))
        return JSONResponse({"devices": [d.to_json() for d in listed]})

    async def unregister(request: Request, user_id: str) -> Response:
        device = await devices.unregister(user_id, str(request.path_params["device_id"]))
        return JSONResponse(device.to_json())

    return [
        HttpRoute("POST", "/users/{user_id}/devices", PRODUCER, register),
        HttpRoute("GET", "/users/{user_id}/devices", PRODUCER, list_devices),
        HttpRoute("DELETE", "/users/{user_id}/devices/{device_id}", PRODUCER, unregister),
        HttpRoute("POST", "/devices", USER, register),
        HttpRoute("GET", "/devices", USER, list_devices),
        HttpRoute("DELETE", "/devices/{device_id}", USER, unregister),
    ]
