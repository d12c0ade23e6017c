"""Topic routes on the edge: producers manage topics and their subscribers, users their
own subscriptions::

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

from starlette.requests import Request
from starlette.responses import Response

from notify_core.http import JSONResponse, int_param, json_body
from notify_core.routes import PRODUCER, USER, HttpRoute
from preference_svc.topics import (
    TopicStore,
    check_page,
    check_topic,
    parse_subscribers,
    parse_topic_settings,
)


def topic_routes(topics: TopicStore) -> list[HttpRoute]:
    async def set_topic(request: Request) -> Response:
        topic = check_topic(request.path_params["topic"])
        public = parse_topic_settings(await json_body(request))
        return JSONResponse((await topics.set_public(topic, public)).to_json())

    async def get_topic(request: Request) -> Response:
        topic = check_topic(request.path_params["topic"])
        return JSONResponse((await topics.get(topic)).to_json())

    async def subscribe_users(request: Request) -> Response:
        topic = check_topic(request.path_params["topic"])
        user_ids = parse_subscribers(await json_body(request))
        return JSONResponse({"subscribed": await topics.subscribe(topic, user_ids)})

    async def unsubscribe_user(request: Request, user_id: str) -> Response:
        topic = check_topic(request.path_params["topic"])
        return JSONResponse({"unsubscribed": await topics.unsubscribe(topic, [user_id])})

    async def list_subscribers(request: Request) -> Response:
        topic = check_topic(request.path_params["topic"])
        after, limit = check_page(request.query_params.get("after"), int_param(request, "limit", 0))
        page = await topics.subscribers(topic, after, limit)
        return JSONResponse({"user_ids": page.user_ids, "next": page.next})

    async def subscribe_me(request: Request, user_id: str) -> Response:
        topic = check_topic(request.path_params["topic"])
        await topics.subscribe_self(topic, user_id)
        return JSONResponse({"topic": topic, "subscribed": True})

    async def unsubscribe_me(request: Request, user_id: str) -> Response:
        topic = check_topic(request.path_params["topic"])
        await topics.unsubscribe(topic, [user_id])
        return JSONResponse({"topic": topic, "subscribed": False})

    async def my_topics(request: Request, user_id: str) -> Response:
        return JSONResponse({"topics": await topics.topics_of(user_id)})

    return [
        HttpRoute("GET", "/topics", USER, my_topics),
        HttpRoute("PUT", "/topics/{topic}", PRODUCER, set_topic),
        HttpRoute("GET", "/topics/{topic}", PRODUCER, get_topic),
        HttpRoute("PUT", "/topics/{topic}/subscribers", PRODUCER, subscribe_users),
        HttpRoute("GET", "/topics/{topic}/subscribers", PRODUCER, list_subscribers),
        HttpRoute("DELETE", "/topics/{topic}/subscribers/{user_id}", PRODUCER, unsubscribe_user),
        HttpRoute("PUT", "/topics/{topic}/subscription", USER, subscribe_me),
        HttpRoute("DELETE", "/topics/{topic}/subscription", USER, unsubscribe_me),
    ]
