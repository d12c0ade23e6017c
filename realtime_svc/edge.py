"""The HTTP edge: every service's routes (DESIGN §5) on one Starlette application.

Each service declares its routes (``<service>/routes.py``, :class:`~notify_core.routes.HttpRoute`)
and the composition root hands them over; the edge mounts them behind their auth policies
(:func:`notify_core.routes.mount`). Every error leaves as ``{"error": {"code", "message"}}``
with the status of its :mod:`notify_core.errors` class, an unknown path as 404
``not_found`` and a known path with another method as 405 ``method_not_allowed``.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from notify_core.auth import Authenticator
from notify_core.http import JSONResponse
from notify_core.routes import HttpRoute, mount


def create_edge(auth: Authenticator, routes: Sequence[HttpRoute]) -> Starlette:
    """The application serving ``routes``; ``app.state.routes`` keeps their declarations."""
    app = Starlette(
        routes=mount(routes, auth),
        exception_handlers={404: _not_found, 405: _method_not_allowed},
    )
    app.state.routes = tuple(routes)
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": {"code": "not_found", "message": f"no route {request.url.path}"}},
        status_code=404,
    )


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {
            "error": {
                "code": "method_not_allowed",
                "message": f"{request.method} is not allowed on {request.url.path}",
            }
        },
        status_code=405,
    )
