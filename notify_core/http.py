"""What every HTTP route of the edge shares: the error shape of DESIGN §5, request bodies
and whole numbers in the query (routes themselves are declared with
:mod:`notify_core.routes`).

Every error leaves as ``{"error": {"code", "message"}}`` with the HTTP status of its
:mod:`notify_core.errors` class; anything else a route raises is logged here and answered
500 ``internal`` without its details. Request bodies are read only through
:func:`read_body` (and :func:`json_body` above it), which stops reading at the limit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from notify_core import fastjson
from notify_core.constants import MAX_BODY_BYTES
from notify_core.errors import INTERNAL_MESSAGE, InvalidArgument, NotifyError, TooLarge
from notify_core.storable import loads, text_problem

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


class JSONResponse(StarletteJSONResponse):
    """Starlette's JSON response encoded by :func:`notify_core.fastjson.dumps`: the same
    compact UTF-8 JSON, about 25 times faster for an inbox page (every JSON answer of the
    edge goes through it)."""

    def render(self, content: Any) -> bytes:
        return fastjson.dumps(content)


def error_response(exc: NotifyError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.http_status
    )


def _check_url(request: Request) -> None:
    """Path and query parameters reach the database as they come: none may hold NUL."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (problem := text_problem(value)) is not None:
            raise InvalidArgument(name, problem)
    for name, value in request.query_params.multi_items():
        if (problem := text_problem(value) or text_problem(name)) is not None:
            raise InvalidArgument(name, problem)


def guarded(handler: Handler) -> Handler:
    """``handler`` with every :class:`NotifyError` it raises answered as an error response,
    and anything unexpected as 500 ``internal`` (the details go to the log only)."""

    async def wrapper(request: Request) -> Response:
        try:
            _check_url(request)
            return await handler(request)
        except NotifyError as exc:
            return error_response(exc)
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return JSONResponse(
                {"error": {"code": "internal", "message": INTERNAL_MESSAGE}}, status_code=500
            )

    return wrapper


def int_param(request: Request, name: str, default: int) -> int:
    """The whole number of query parameter ``name``, or ``default`` when absent or empty."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(name, f"must be a whole number, got {raw!r}") from None


def bool_param(request: Request, name: str) -> bool:
    """Query parameter ``name`` as ``true``/``false`` (``1``/``0``); false when absent."""
    raw = (request.query_params.get(name) or "").lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise InvalidArgument(name, f"must be true or false, got {raw!r}")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, read as it arrives; :class:`TooLarge` as soon as it (or its
    declared Content-Length) passes ``limit``, without reading further.

    The 413 goes out while the client may still be sending; the server then drops what
    else arrives without keeping it (closing at once instead would reset the connection
    and could lose the answer before the client reads it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(limit)
    return bytes(body)


async def json_body(request: Request) -> Any:
    """The request's JSON body, bounded by :func:`read_body` and checked by
    :func:`notify_core.storable.loads`: ``InvalidArgument`` naming the field otherwise."""
    return loads(await read_body(request))
