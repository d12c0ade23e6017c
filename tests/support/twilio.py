"""A local Twilio: the Messages API as Twilio speaks it, status callbacks signed the way
Twilio signs them, and the ``twilio`` fixture.

:class:`FakeTwilio` serves ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``:
HTTP basic auth with the account SID and auth token (else 401, error 20003), the form
fields Twilio requires (``To``; ``From`` or ``MessagingServiceSid``; ``Body`` of at most
1,600 characters; each missing one is its own error code), and 201 with Twilio's message
resource (``sid`` ``SM…``, ``status`` ``queued``, or ``accepted`` through a Messaging
Service). Errors are Twilio's JSON ``{"code", "message", "more_info", "status"}``.
Some ``To`` numbers answer as Twilio's own test numbers do (:data:`ERRORS`), others are
the fake's: rate limited, a server error, an answer that never comes. While
:attr:`FakeTwilio.down` is set, every send gets that server error, whatever its number.

:func:`sign` computes ``X-Twilio-Signature`` independently of the SDK the code verifies
with (HMAC-SHA1 over the URL and the sorted form keys and values), and
:func:`post_status` posts a signed status callback to a URL, as Twilio does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.asgi import serving_app

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
FROM_NUMBER = "+15005550006"
MESSAGING_SERVICE = "MG" + "fedcba9876543210" * 2

VALID = "+15005550006"
INVALID = "+15005550001"
NOT_ROUTABLE = "+15005550002"
NO_PERMISSION = "+15005550003"
OPTED_OUT = "+15005550004"
NOT_MOBILE = "+15005550009"
RATE_LIMITED = "+15005550429"
SERVER_ERROR = "+15005550500"
HANGS = "+15005550408"

ERRORS: Mapping[str, tuple[int, int, str]] = {
    INVALID: (400, 21211, "The 'To' number {to} is not a valid phone number."),
    NOT_ROUTABLE: (400, 21612, "The 'To' phone number: {to}, is not currently reachable."),
    NO_PERMISSION: (400, 21408, "Permission to send an SMS has not been enabled for {to}"),
    OPTED_OUT: (400, 21610, "Attempt to send to unsubscribed recipient"),
    NOT_MOBILE: (400, 21614, "'To' number is not a valid mobile number"),
    RATE_LIMITED: (429, 20429, "Too Many Requests"),
    SERVER_ERROR: (500, 20500, "An internal server error has occurred"),
}
"""``To`` → (HTTP status, Twilio code, message), as Twilio's test numbers answer."""
RETRY_AFTER = "7"
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _error(status: int, code: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(error_body(status, code, message), status_code=status, headers=headers)


@dataclass
class FakeTwilio:
    """What the fake received, and its address once serving."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[dict[str, Any]] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the fake stops: answers held back (:data:`HANGS`) end then."""
    down: bool = False
    """Every send (authenticated and parsed; its form recorded) is answered as
    :data:`SERVER_ERROR` is: Twilio is failing."""

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given, f"Basic {expected}")

    async def create_message(self, request: Request) -> Response:
        if not self._authorised(request) or request.path_params["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        if request.headers.get("content-type", "").split(";")[0] != (
            "application/x-www-form-urlencoded"
        ):
            return _error(400, 20001, "Content-Type must be application/x-www-form-urlencoded")
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.forms.append(form)
        if self.down:
            status, code, text = ERRORS[SERVER_ERROR]
            return _error(status, code, text)
        problem = self._check(form)
        if problem is not None:
            return problem
        to = form["To"]
        if to == HANGS:
            await self.release.wait()
            return _error(503, 20503, "Service Unavailable")
        if to in ERRORS:
            status, code, text = ERRORS[to]
            headers = {"Retry-After": RETRY_AFTER} if status == 429 else {}
            return _error(status, code, text.format(to=to), **headers)
        resource = self._resource(form)
        self.messages.append(resource)
        return JSONResponse(resource, status_code=201)

    def _check(self, form: Mapping[str, str]) -> Response | None:
        if not form.get("To"):
            return _error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(form["To"]):
            return _error(400, 21211, f"The 'To' number {form['To']} is not a valid phone number.")
        service = form.get("MessagingServiceSid")
        if not form.get("From") and not service:
            return _error(400, 21603, "A 'From' phone number is required.")
        if service and service != MESSAGING_SERVICE:
            return _error(404, 21701, "The Messaging Service Sid is invalid.")
        if not form.get("Body"):
            return _error(400, 21602, "Message body is required.")
        if len(form["Body"]) > 1600:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        return None

    def _resource(self, form: Mapping[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True)
        service = form.get("MessagingServiceSid")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": None if service else form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": form["To"],
            "uri": uri,
            "status_callback": form.get("StatusCallback"),
        }

    def app(self) -> Starlette:
        path = "/2010-04-01/Accounts/{sid}/Messages.json"
        return Starlette(routes=[Route(path, self.create_message, methods=["POST"])])


@asynccontextmanager
async def serving_twilio(fake: FakeTwilio | None = None) -> AsyncIterator[FakeTwilio]:
    """A :class:`FakeTwilio` on a free port of 127.0.0.1 (its ``base_url`` set)."""
    fake = fake or FakeTwilio()
    async with serving_app(fake.app()) as port:
        fake.base_url = f"http://127.0.0.1:{port}"
        try:
            yield fake
        finally:
            fake.release.set()


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with serving_twilio() as fake:
        yield fake


def twilio_env(twilio: FakeTwilio) -> dict[str, str]:
    """``NOTIFY_*`` of a node that texts through ``twilio`` (Twilio as the SMS provider)."""
    return {
        "NOTIFY_SMS_PROVIDER": "twilio",
        "NOTIFY_TWILIO_ACCOUNT_SID": twilio.account_sid,
        "NOTIFY_TWILIO_AUTH_TOKEN": twilio.auth_token,
        "NOTIFY_TWILIO_FROM": FROM_NUMBER,
        "NOTIFY_TWILIO_BASE_URL": twilio.base_url,
    }


def sign(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    """``X-Twilio-Signature`` of a post of ``form`` to ``url``."""
    data = url + "".join(key + form[key] for key in sorted(form))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def status_fields(
    message: Mapping[str, Any], status: str, error_code: int | None = None
) -> dict[str, str]:
    """The form of Twilio's status callback for ``message`` (a message resource)."""
    fields = {
        "AccountSid": str(message["account_sid"]),
        "ApiVersion": "2010-04-01",
        "From": str(message.get("from") or FROM_NUMBER),
        "MessageSid": str(message["sid"]),
        "MessageStatus": status,
        "SmsSid": str(message["sid"]),
        "SmsStatus": status,
        "To": str(message["to"]),
    }
    if message.get("messaging_service_sid"):
        fields["MessagingServiceSid"] = str(message["messaging_service_sid"])
    if error_code is not None:
        fields["ErrorCode"] = str(error_code)
    return fields


async def post_status(
    url: str,
    fields: Mapping[str, str],
    *,
    auth_token: str = AUTH_TOKEN,
    signature: str | None = None,
    signed_url: str | None = None,
) -> httpx.Response:
    """POST a status callback to ``url`` as Twilio does: form-encoded and signed (over
    ``signed_url`` when given; ``signature`` replaces the right one; ``""`` sends none)."""
    value = sign(auth_token, signed_url or url, fields) if signature is None else signature
    headers = {"User-Agent": "TwilioProxy/1.1", "Content-Type": "application/x-www-form-urlencoded"}
    if value:
        headers["X-Twilio-Signature"] = value
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(url, data=dict(fields), headers=headers)
