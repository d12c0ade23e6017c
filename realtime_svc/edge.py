"""The HTTP edge: REST, WebSocket and health endpoints exactly as DESIGN §5.

A thin translation layer: it authenticates, parses, and calls the ingest API (in this
process or over gRPC) and the inbox; every error leaves as
``{"error": {"code", "message"}}`` with the status of its :mod:`notify_core.errors` class.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from delivery_svc.provider_event_routes import ProviderWebhooks, provider_event_routes
from delivery_svc.tracking_routes import tracking_routes
from ingest_svc.client import IngestApi
from ingest_svc.validate import parse_send_json
from notify_core.auth import Authenticator, bearer
from notify_core.checks import check_user_id
from notify_core.convert import row_to_json
from notify_core.db.engine import Database
from notify_core.errors import InvalidArgument, NotifyError, Unauthenticated
from notify_core.http import error_response, guarded, json_body
from notify_core.redact import redact
from preference_svc.devices import DeviceStore
from preference_svc.routes import EdgeHelpers, preference_routes
from preference_svc.store import PreferenceStore
from preference_svc.topics import TopicStore
from preference_svc.unsubscribe_routes import unsubscribe_routes
from preference_svc.validate import parse_preferences
from realtime_svc.hub import Hub
from realtime_svc.inbox import Inbox
from realtime_svc.resume import resume_cursor
from realtime_svc.sse import sse_routes
from realtime_svc.ws import serve_session
from router_svc.inputs import list_decisions
from template_svc.routes import template_routes
from template_svc.templates import Templates

log = logging.getLogger(__name__)


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(name, f"must be a whole number, got {raw!r}") from None


def create_edge(
    *,
    auth: Authenticator,
    ingest: IngestApi,
    inbox: Inbox,
    hub: Hub,
    ready: Callable[[], Awaitable[None]],
    preferences: PreferenceStore,
    database: Database,
    allow_http_webhooks: bool = False,
    ws_send_queue: int = 1_000,
    signing_secret: str | None = None,
    public_url: str | None = None,
    templates: Templates | None = None,
    provider_webhooks: ProviderWebhooks | None = None,
) -> Starlette:
    def user_of(request: Request) -> str:
        return auth.user(bearer(request.headers.get("authorization")))

    async def send(request: Request) -> Response:
        auth.producer(bearer(request.headers.get("authorization")))
        parsed = parse_send_json(await json_body(request))
        if parsed.topic is not None:
            send_id = await ingest.send_topic(parsed.topic, parsed.requests[0])
            return JSONResponse({"id": send_id, "topic": parsed.topic}, status_code=202)
        ids = await ingest.send(parsed.requests)
        return JSONResponse(
            {"ids": ids} if parsed.shape == "many" else {"id": ids[0]}, status_code=202
        )

    async def topic_send(request: Request) -> Response:
        auth.producer(bearer(request.headers.get("authorization")))
        return JSONResponse(await ingest.topic_send(request.path_params["id"]))

    async def list_notifications(request: Request) -> Response:
        user_id = user_of(request)
        page_no, limit = _int_param(request, "page", 1), _int_param(request, "limit", 20)
        if page_no < 1:
            raise InvalidArgument("page", f"must be 1 or more, got {page_no}")
        if limit < 1:
            raise InvalidArgument("limit", f"must be 1 or more, got {limit}")
        page = await inbox.list_page(user_id, page_no, limit)
        return JSONResponse(
            {
                "notifications": [row_to_json(r) for r in page.rows],
                "page": page.page,
                "limit": page.limit,
                "has_more": page.has_more,
                "unread_count": page.unread_count,
            }
        )

    async def unread_count(request: Request) -> Response:
        return JSONResponse({"unread_count": await inbox.unread_count(user_of(request))})

    async def mark_read(request: Request) -> Response:
        user_id = user_of(request)
        count = await inbox.mark_read(user_id, request.path_params["id"])
        return JSONResponse({"id": request.path_params["id"], "read": True, "unread_count": count})

    async def mark_all_read(request: Request) -> Response:
        return JSONResponse({"updated": await inbox.mark_all_read(user_of(request))})

    def target_user(request: Request) -> str:
        auth.producer(bearer(request.headers.get("authorization")))
        return check_user_id(str(request.path_params["user_id"]))

    async def deliveries(request: Request) -> Response:
        auth.producer(bearer(request.headers.get("authorization")))
        nid = str(request.path_params["id"])
        return JSONResponse(
            {"notification_id": nid, "deliveries": await list_decisions(database, nid)}
        )

    async def get_my_preferences(request: Request) -> Response:
        return JSONResponse((await preferences.get(user_of(request))).to_json())

    async def put_my_preferences(request: Request) -> Response:
        user_id = user_of(request)
        update = parse_preferences(
            await json_body(request), allow_http_webhooks=allow_http_webhooks
        )
        return JSONResponse((await preferences.update(user_id, update)).to_json())

    async def get_user_preferences(request: Request) -> Response:
        return JSONResponse((await preferences.get(target_user(request))).to_json())

    async def put_user_preferences(request: Request) -> Response:
        user_id = target_user(request)
        update = parse_preferences(
            await json_body(request), allow_http_webhooks=allow_http_webhooks
        )
        return JSONResponse((await preferences.update(user_id, update)).to_json())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await ready()
        except NotifyError as exc:
            return error_response(exc)
        except Exception as exc:
            return JSONResponse(
                {"error": {"code": "unavailable", "message": redact(str(exc))}}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    async def websocket_endpoint(websocket: WebSocket) -> None:
        try:
            token = websocket.query_params.get("token")
            if not token:
                raise Unauthenticated("missing token (connect to /ws?token=<jwt>)")
            user_id, expires_at = auth.session(token)
            since = await resume_cursor(
                inbox, user_id, "since", websocket.query_params.get("since")
            )
        except NotifyError as exc:
            await websocket.send_denial_response(error_response(exc))
            return
        await websocket.accept()
        await serve_session(
            websocket,
            user_id,
            hub,
            inbox,
            expires_at=expires_at,
            queue_limit=ws_send_queue,
            since=since,
        )

    routes = [
        Route("/notifications/send", guarded(send), methods=["POST"]),
        Route("/notifications", guarded(list_notifications), methods=["GET"]),
        Route("/notifications/unread-count", guarded(unread_count), methods=["GET"]),
        Route("/notifications/read-all", guarded(mark_all_read), methods=["PATCH"]),
        Route("/notifications/{id}/read", guarded(mark_read), methods=["PATCH"]),
        Route("/notifications/{id}/deliveries", guarded(deliveries), methods=["GET"]),
        Route("/topic-sends/{id}", guarded(topic_send), methods=["GET"]),
        Route("/preferences", guarded(get_my_preferences), methods=["GET"]),
        Route("/preferences", guarded(put_my_preferences), methods=["PUT"]),
        Route("/users/{user_id}/preferences", guarded(get_user_preferences), methods=["GET"]),
        Route("/users/{user_id}/preferences", guarded(put_user_preferences), methods=["PUT"]),
        *preference_routes(
            EdgeHelpers(auth, guarded, user_of, target_user, json_body, _int_param),
            DeviceStore(database, preferences),
            TopicStore(database),
        ),
        *unsubscribe_routes(
            auth=auth,
            preferences=preferences,
            signing_secret=signing_secret,
            public_url=public_url,
        ),
        *tracking_routes(database=database, signing_secret=signing_secret),
        *provider_event_routes(
            auth=auth, database=database, webhooks=provider_webhooks or ProviderWebhooks()
        ),
        *template_routes(auth, templates or Templates(database)),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        WebSocketRoute("/ws", websocket_endpoint),
        *sse_routes(auth, hub, inbox, queue_limit=ws_send_queue),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"error": {"code": "not_found", "message": f"no route {request.url.path}"}},
            status_code=404,
        )

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {
                "error": {
                    "code": "method_not_allowed",
                    "message": f"{request.method} is not allowed on {request.url.path}",
                }
            },
            status_code=405,
        )

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: method_not_allowed})
