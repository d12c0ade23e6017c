"""Open and click tracking on the edge.

``GET /t/o/{token}.gif``
    A 1x1 transparent GIF, never cached (each fetch is an open), and one open counted on
    the token's delivery. A bad token answers **400 with the same GIF** and counts
    nothing: the pixel sits in an email, where an error body would only show as a broken
    image; the status still tells anyone looking that the token was refused.
``GET /t/c/{token}``
    ``302`` to exactly the URL the token signed, and one click counted. A bad token
    answers 400 (the JSON error of DESIGN §5) and redirects nowhere.

A valid token whose delivery no longer exists still answers (pixel, redirect) without
counting; so does one whose count could not be written (the database down): the reader
reaches their link either way, and the failure is logged. Without a signing secret both
routes answer 503 ``unavailable``.
"""

from __future__ import annotations

import base64
import logging

from starlette.requests import Request
from starlette.responses import Response

from delivery_svc.engagement import record_click, record_open
from delivery_svc.tracking import read_click_token, read_open_token
from notify_core.constants import TRACK_CLICK_PATH, TRACK_OPEN_PATH
from notify_core.db.engine import Database
from notify_core.errors import InvalidArgument, NotifyError, Unavailable
from notify_core.routes import PUBLIC, HttpRoute

log = logging.getLogger(__name__)

IN_EMAIL = "a link in an email: its signed token names the delivery, and is the authority"

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A 1x1 transparent GIF (43 bytes)."""
NO_CACHE = {
    "cache-control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "pragma": "no-cache",
    "expires": "0",
}


def tracking_routes(*, database: Database, signing_secret: str | None) -> list[HttpRoute]:
    def secret() -> str:
        if not signing_secret:
            raise Unavailable(
                "tracking links are disabled: NOTIFY_SIGNING_SECRET is not set "
                "(nor NOTIFY_JWT_SECRET, its default)"
            )
        return signing_secret

    def gif(status: int) -> Response:
        return Response(PIXEL, status_code=status, media_type="image/gif", headers=NO_CACHE)

    async def opened(request: Request) -> Response:
        key = secret()
        try:
            delivery_id = read_open_token(key, str(request.path_params["token"]))
        except InvalidArgument as exc:
            log.info("open pixel refused: %s", exc.message)
            return gif(400)
        try:
            if not await record_open(database, delivery_id):
                log.info("open of unknown delivery %s not counted", delivery_id)
        except NotifyError as exc:
            log.warning("open of delivery %s not counted: %s", delivery_id, exc.message)
        return gif(200)

    async def clicked(request: Request) -> Response:
        claim = read_click_token(secret(), str(request.path_params["token"]))
        try:
            if not await record_click(database, claim.delivery_id):
                log.info("click of unknown delivery %s not counted", claim.delivery_id)
        except NotifyError as exc:
            log.warning("click of delivery %s not counted: %s", claim.delivery_id, exc.message)
        # Not RedirectResponse: it re-quotes the URL, and the target must be exactly the
        # signed one (normalised to ASCII when it was signed).
        return Response(status_code=302, headers={"location": claim.url, **NO_CACHE})

    return [
        HttpRoute("GET", TRACK_OPEN_PATH + "{token}.gif", PUBLIC, opened, note=IN_EMAIL),
        HttpRoute("GET", TRACK_CLICK_PATH + "{token}", PUBLIC, clicked, note=IN_EMAIL),
    ]
