"""RouterService's REST route on the edge.

``GET /notifications/{id}/deliveries`` (producer key)
    ``{"notification_id", "deliveries": [...]}``: what was decided for each channel
    (:func:`router_svc.inputs.list_decisions`); 404 for an unknown notification.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from notify_core.db.engine import Database
from notify_core.http import JSONResponse
from notify_core.routes import PRODUCER, HttpRoute
from router_svc.inputs import list_decisions


def routes(database: Database) -> list[HttpRoute]:
    """The route above, reading ``database``."""

    async def deliveries(request: Request) -> Response:
        nid = str(request.path_params["id"])
        return JSONResponse(
            {"notification_id": nid, "deliveries": await list_decisions(database, nid)}
        )

    return [HttpRoute("GET", "/notifications/{id}/deliveries", PRODUCER, deliveries)]
