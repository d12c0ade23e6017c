"""REST routes for device tokens and topic subscriptions, mounted by the HTTP edge.

The edge hands over its own request helpers (:class:`EdgeHelpers`: error mapping,
authentication, body parsing), so these routes answer, authenticate and fail exactly like
the rest of the edge.

Producer (API key) routes act on the user named in the path; user (JWT) routes act on the
caller::

    POST   /users/{user_id}/devices               POST   /devices            → 201 (200 if known)
    GET    /users/{user_id}/devices               GET    /devices
    DELETE /users/{user_id}/devices/{device_id}   DELETE /devices/{device_id}
    PUT    /topics/{topic}                        {"public": bool} → {"topic", "public"}
    GET    /topics/{topic}                        → {"topic", "public"}
    PUT    /topics/{topic}/subscribers            {"user_ids": [...]} → {"subscribed": N}
    DELETE /topics/{topic}/subscribers/{user_id}  → {"unsubscribed": 0 or 1}
    GET    /topics/{topic}/subscribers?after=&limit=  → {"user_ids": [...], "next": ...}
    PUT    /topics/{topic}/subscription           (user) → {"topic", "subscribed": true};
                                                  403 unless the topic is public
    DELETE /topics/{topic}/subscription           (user) → {"topic", "subscribed": false}
    GET    /topics                                (user) → {"topics": [...]}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from notify_core.auth import Authenticator, bearer
from preference_svc.devices import DeviceStore, parse_device
from preference_svc.topics import (
    TopicStore,
    check_page,
    check_topic,
    parse_subscribers,
    parse_topic_settings,
)

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class EdgeHelpers:
    """The edge's request helpers (see ``realtime_svc.edge.create_edge``)."""

    auth: Authenticator
    guarded: Callable[[Handler], Handler]
    """Wraps a handler so Notify errors leave as ``{"error": {...}}`` with their status."""
    user_of: Callable[[Request], str]
    """The user id of the request's JWT (raises ``Unauthenticated``)."""
    target_user: Callable[[Request], str]
    """Checks the producer key and answers the ``{user_id}`` path parameter."""
    json_body: Callable[[Request], Awaitable[Any]]
    int_param: Callable[[Request, str, int], int]

    def producer(self, request: Request) -> None:
        """Accept only a producer's API key."""
        self.auth.producer(bearer(request.headers.get("authorization")))


def preference_routes(http: EdgeHelpers, devices: DeviceStore, topics: TopicStore) -> list[Route]:
    async def register(user_id: str, request: Request) -> Response:
        device, created = await devices.register(
            user_id, parse_device(await http.json_body(request))
        )
        return JSONResponse(device.to_json(), status_code=201 if created else 200)

    async def list_devices(user_id: str) -> Response:
        return JSONResponse({"devices": [d.to_json() for d in await devices.list(user_id)]})

    async def unregister(user_id: str, request: Request) -> Response:
        device = await devices.unregister(user_id, str(request.path_params["device_id"]))
        return JSONResponse(device.to_json())

    async def register_for_user(request: Request) -> Response:
        return await register(http.target_user(request), request)

    async def register_mine(request: Request) -> Response:
        return await register(http.user_of(request), request)

    async def list_for_user(request: Request) -> Response:
        return await list_devices(http.target_user(request))

    async def list_mine(request: Request) -> Response:
        return await list_devices(http.user_of(request))

    async def unregister_for_user(request: Request) -> Response:
        return await unregister(http.target_user(request), request)

    async def unregister_mine(request: Request) -> Response:
        return await unregister(http.user_of(request), request)

    async def set_topic(request: Request) -> Response:
        http.producer(request)
        topic = check_topic(request.path_params["topic"])
        public = parse_topic_settings(await http.json_body(request))
        return JSONResponse((await topics.set_public(topic, public)).to_json())

    async def get_topic(request: Request) -> Response:
        http.producer(request)
        topic = check_topic(request.path_params["topic"])
        return JSONResponse((await topics.get(topic)).to_json())

    async def subscribe_users(request: Request) -> Response:
        http.producer(request)
        topic = check_topic(request.path_params["topic"])
        user_ids = parse_subscribers(await http.json_body(request))
        return JSONResponse({"subscribed": await topics.subscribe(topic, user_ids)})

    async def unsubscribe_user(request: Request) -> Response:
        user_id = http.target_user(request)
        topic = check_topic(request.path_params["topic"])
        return JSONResponse({"unsubscribed": await topics.unsubscribe(topic, [user_id])})

    async def list_subscribers(request: Request) -> Response:
        http.producer(request)
        topic = check_topic(request.path_params["topic"])
        after, limit = check_page(
            request.query_params.get("after"), http.int_param(request, "limit", 0)
        )
        page = await topics.subscribers(topic, after, limit)
        return JSONResponse({"user_ids": page.user_ids, "next": page.next})

    async def subscribe_me(request: Request) -> Response:
        user_id = http.user_of(request)
        topic = check_topic(request.path_params["topic"])
        await topics.subscribe_self(topic, user_id)
        return JSONResponse({"topic": topic, "subscribed": True})

    async def unsubscribe_me(request: Request) -> Response:
        user_id = http.user_of(request)
        topic = check_topic(request.path_params["topic"])
        await topics.unsubscribe(topic, [user_id])
        return JSONResponse({"topic": topic, "subscribed": False})

    async def my_topics(request: Request) -> Response:
        return JSONResponse({"topics": await topics.topics_of(http.user_of(request))})

    g = http.guarded
    return [
        Route("/users/{user_id}/devices", g(register_for_user), methods=["POST"]),
        Route("/users/{user_id}/devices", g(list_for_user), methods=["GET"]),
        Route("/users/{user_id}/devices/{device_id}", g(unregister_for_user), methods=["DELETE"]),
        Route("/devices", g(register_mine), methods=["POST"]),
        Route("/devices", g(list_mine), methods=["GET"]),
        Route("/devices/{device_id}", g(unregister_mine), methods=["DELETE"]),
        Route("/topics", g(my_topics), methods=["GET"]),
        Route("/topics/{topic}", g(set_topic), methods=["PUT"]),
        Route("/topics/{topic}", g(get_topic), methods=["GET"]),
        Route("/topics/{topic}/subscribers", g(subscribe_users), methods=["PUT"]),
        Route("/topics/{topic}/subscribers", g(list_subscribers), methods=["GET"]),
        Route("/topics/{topic}/subscribers/{user_id}", g(unsubscribe_user), methods=["DELETE"]),
        Route("/topics/{topic}/subscription", g(subscribe_me), methods=["PUT"]),
        Route("/topics/{topic}/subscription", g(unsubscribe_me), methods=["DELETE"]),
    ]
