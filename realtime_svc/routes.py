"""RealtimeService's routes on the edge: the inbox over REST, health, and live connections.

``GET /notifications?page=&limit=``, ``GET /notifications/unread-count``,
``PATCH /notifications/{id}/read``, ``PATCH /notifications/read-all``
    The caller's inbox (user JWT). The first page at the default size and the unread
    count come from the inbox cache (:mod:`notify_core.inbox_cache`).
``GET /healthz``, ``GET /readyz``
    Alive; ready (the database, queue and cache answer), else 503.
``GET /ws?token=&since=`` (WebSocket), ``GET /notifications/stream`` (SSE)
    Live events; each checks its user token itself (:mod:`realtime_svc.ws`,
    :mod:`realtime_svc.sse`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from notify_core.auth import Authenticator
from notify_core.constants import INBOX_DEFAULT_LIMIT
from notify_core.errors import InvalidArgument, NotifyError
from notify_core.http import JSONResponse, error_response, int_param
from notify_core.redact import redact
from notify_core.routes import PUBLIC, USER, HttpRoute
from realtime_svc.hub import Hub
from realtime_svc.inbox import Inbox
from realtime_svc.sse import sse_routes
from realtime_svc.ws import ws_route


def routes(
    auth: Authenticator,
    inbox: Inbox,
    hub: Hub,
    ready: Callable[[], Awaitable[None]],
    *,
    queue_limit: int,
) -> list[HttpRoute]:
    """Every route of the service; ``ready`` raises when the node is not ready, and
    ``queue_limit`` bounds each live connection's queue of frames."""
    return [
        *inbox_routes(inbox),
        *health_routes(ready),
        ws_route(auth, hub, inbox, queue_limit=queue_limit),
        *sse_routes(auth, hub, inbox, queue_limit=queue_limit),
    ]


def inbox_routes(inbox: Inbox) -> list[HttpRoute]:
    async def list_notifications(request: Request, user_id: str) -> Response:
        page_no = int_param(request, "page", 1)
        limit = int_param(request, "limit", INBOX_DEFAULT_LIMIT)
        if page_no < 1:
            raise InvalidArgument("page", f"must be 1 or more, got {page_no}")
        if limit < 1:
            raise InvalidArgument("limit", f"must be 1 or more, got {limit}")
        body = await inbox.page_body(user_id, page_no, limit)
        return Response(body, media_type="application/json")

    async def unread_count(request: Request, user_id: str) -> Response:
        return JSONResponse({"unread_count": await inbox.unread_count(user_id)})

    async def mark_read(request: Request, user_id: str) -> Response:
        count = await inbox.mark_read(user_id, request.path_params["id"])
        return JSONResponse({"id": request.path_params["id"], "read": True, "unread_count": count})

    async def mark_all_read(request: Request, user_id: str) -> Response:
        return JSONResponse({"updated": await inbox.mark_all_read(user_id)})

    return [
        HttpRoute("GET", "/notifications", USER, list_notifications),
        HttpRoute("GET", "/notifications/unread-count", USER, unread_count),
        HttpRoute("PATCH", "/notifications/read-all", USER, mark_all_read),
        HttpRoute("PATCH", "/notifications/{id}/read", USER, mark_read),
    ]


def health_routes(ready: Callable[[], Awaitable[None]]) -> list[HttpRoute]:
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

    probe = "a probe of the orchestrator; it tells nothing about users or notifications"
    return [
        HttpRoute("GET", "/healthz", PUBLIC, healthz, note=probe),
        HttpRoute("GET", "/readyz", PUBLIC, readyz, note=probe),
    ]
