"""One-click unsubscribe over HTTP (RFC 8058), mounted on the edge.

``GET /unsubscribe?token=…``
    An HTML page naming the type and channel, with a button that POSTs. Changes nothing:
    mail scanners and link previewers fetch URLs on their own.
``POST /unsubscribe?token=…``
    Switches the type off on the token's channel (or every channel for ``"*"``), keeping
    the user's other per-type overrides. Mail clients post ``List-Unsubscribe=One-Click``
    (form-encoded or multipart); the token in the URL is the whole authority, so the body
    is not needed and not read. Idempotent. Answers the done page, or JSON when the
    client accepts ``application/json``.
``POST /users/{user_id}/unsubscribe-links`` (producer key)
    ``{"type", "channel"?, "ttl_seconds"?}`` → ``{"url", "headers", "expires_at"}``.

A missing, malformed, altered or expired token is a 400 naming ``token``, and nothing
changes. Without a signing secret every route answers 503 ``unavailable``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from notify_core.errors import InvalidArgument, Unavailable
from notify_core.http import JSONResponse, json_body
from notify_core.routes import PRODUCER, PUBLIC, HttpRoute
from preference_svc.store import PreferenceStore, StoredPreferences
from preference_svc.unsubscribe import (
    UnsubscribeClaim,
    list_unsubscribe_headers,
    make_token,
    parse_link_request,
    read_token,
    unsubscribe_url,
)
from preference_svc.unsubscribe_pages import confirm_page, done_page
from preference_svc.validate import PreferencesUpdate

log = logging.getLogger(__name__)

BY_TOKEN = "the link's signed token is the authority (it reaches the user by email)"


async def switch_off(store: PreferenceStore, claim: UnsubscribeClaim) -> StoredPreferences:
    """Turn the claim's type off on its channels, keeping every other per-type override.

    ``PreferencesUpdate.per_type`` replaces the whole map, so the current map is read and
    the claim merged into it. Nothing is written when the switches are already off.
    """
    current = await store.get(claim.user_id)
    before = current.per_type.get(claim.type)
    after = {**(before or {}), **dict.fromkeys(claim.channels, False)}
    if before == after:
        return current
    per_type = {**current.per_type, claim.type: after}
    return await store.update(claim.user_id, PreferencesUpdate(per_type=per_type))


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def unsubscribe_routes(
    preferences: PreferenceStore,
    *,
    signing_secret: str | None,
    public_url: str | None,
    clock: Callable[[], float] = time.time,
) -> list[HttpRoute]:
    """The routes above; ``public_url`` unset means links use the request's own base URL."""

    def secret() -> str:
        if not signing_secret:
            raise Unavailable(
                "unsubscribe links are disabled: NOTIFY_SIGNING_SECRET is not set "
                "(nor NOTIFY_JWT_SECRET, its default)"
            )
        return signing_secret

    def claim_of(request: Request) -> tuple[UnsubscribeClaim, str]:
        key = secret()
        token = request.query_params.get("token")
        if not token:
            raise InvalidArgument("token", "is required: use the unsubscribe link as sent")
        return read_token(key, token, clock()), token

    async def show(request: Request) -> Response:
        claim, token = claim_of(request)
        return confirm_page(claim, token)

    async def unsubscribe(request: Request) -> Response:
        claim, _ = claim_of(request)
        prefs = await switch_off(preferences, claim)
        log.info("unsubscribed: type=%s channel=%s", claim.type, claim.channel)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(
                {
                    "unsubscribed": True,
                    "user_id": claim.user_id,
                    "type": claim.type,
                    "channel": claim.channel,
                    "per_type": {claim.type: prefs.per_type[claim.type]},
                },
                headers={"Cache-Control": "no-store"},
            )
        return done_page(claim)

    async def create_link(request: Request, user_id: str) -> Response:
        key = secret()
        link = parse_link_request(await json_body(request))
        expires_at = int(clock()) + link.ttl_seconds
        token = make_token(key, user_id, link.type, link.channel, expires_at)
        base = public_url or str(request.base_url)
        url = unsubscribe_url(base, token)
        return JSONResponse(
            {
                "url": url,
                "headers": list_unsubscribe_headers(url),
                "expires_at": _iso(expires_at),
            }
        )

    return [
        HttpRoute("GET", "/unsubscribe", PUBLIC, show, note=BY_TOKEN),
        HttpRoute("POST", "/unsubscribe", PUBLIC, unsubscribe, note=BY_TOKEN),
        HttpRoute("POST", "/users/{user_id}/unsubscribe-links", PRODUCER, create_link),
    ]
