"""IngestService's REST routes on the edge; both need a producer key.

``POST /notifications/send``
    One send, a batch (``{"notifications": [...]}``) or a topic send: 202 with the id(s).
``GET /topic-sends/{id}``
    A topic send's progress.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ingest_svc.client import IngestApi
from ingest_svc.validate import parse_send_json
from notify_core.http import JSONResponse, json_body
from notify_core.routes import PRODUCER, HttpRoute


def routes(ingest: IngestApi) -> list[HttpRoute]:
    """The routes above, sending through ``ingest`` (in this process or over gRPC)."""

    async def send(request: Request) -> Response:
        parsed = parse_send_json(await json_body(request))
        if parsed.topic is not None:
            send_id = await ingest.send_topic(parsed.topic, parsed.requests[0])
            return JSONResponse({"id": send_id, "topic": parsed.topic}, status_code=202)
        ids = await ingest.send(parsed.requests)
        return JSONResponse(
            {"ids": ids} if parsed.shape == "many" else {"id": ids[0]}, status_code=202
        )

    async def topic_send(request: Request) -> Response:
        return JSONResponse(await ingest.topic_send(request.path_params["id"]))

    return [
        HttpRoute("POST", "/notifications/send", PRODUCER, send),
        HttpRoute("GET", "/topic-sends/{id}", PRODUCER, topic_send),
    ]
