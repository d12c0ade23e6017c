"""Helpers every HTTP route of the edge shares: the error shape of DESIGN §5 and JSON bodies.

Every error leaves as ``{"error": {"code", "message"}}`` with the HTTP status of its
:mod:`notify_core.errors` class.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from notify_core.constants import MAX_BODY_BYTES
from notify_core.errors import InvalidArgument, NotifyError

Handler = Callable[[Request], Awaitable[Response]]


def error_response(exc: NotifyError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.http_status
    )


def guarded(handler: Handler) -> Handler:
    """``handler`` with every :class:`NotifyError` it raises answered as an error response."""

    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except NotifyError as exc:
            return error_response(exc)

    return wrapper


async def json_body(request: Request) -> Any:
    """The request's JSON body; ``InvalidArgument("body", …)`` when too large or not JSON."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidArgument("body", f"must be at most {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("body", "is not valid JSON") from None
