"""SMS through Twilio's Messages API, and Twilio's status callbacks.

**Sending**: ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``, form-encoded ``To``,
``From`` (an E.164 number) or ``MessagingServiceSid`` (an ``MG…`` sender), ``Body`` and,
when the message has one, ``StatusCallback``; HTTP basic auth with the account SID and
auth token. One ``httpx.AsyncClient`` (keep-alive, bounded pool) per provider.

The ``twilio`` SDK's async client is not used for sending: its ``AsyncTwilioHttpClient``
opens an aiohttp session in its constructor (outside our event loop), its API host is
fixed per domain (``https://api.twilio.com``; only region and edge names can change it,
not a base URL such as a local test server), and its ``TwilioRestException`` keeps the
status and error code but not the answer's headers, so a 429's ``Retry-After`` is lost.
Its wire format is small and stable, so it is spoken here over httpx, as every other
HTTP provider is. The SDK's :class:`~twilio.request_validator.RequestValidator` checks
the status callbacks' signatures.

**Answers**: 201 with the message resource → sent, its ``sid`` (``SM…``) the provider id.
An error answers Twilio's JSON ``{"code", "message", "more_info", "status"}``: a number
that is gone for good (21211 invalid ``To``, 21614 not a mobile number, 21610 the
recipient replied STOP) → :meth:`Outcome.unreachable`, so the number is suppressed; other
refusals of the number (21612 not reachable by SMS from this sender, 21408 its region is
not enabled on the account) and other 4xx → permanent; 20003 (authentication) →
permanent, naming the settings to check; 20429/429, 5xx, timeouts and connection errors
→ transient, with ``Retry-After`` when Twilio sends it.

**Status callbacks** (``POST /webhooks/twilio``): Twilio signs each post with
``X-Twilio-Signature`` = base64(HMAC-SHA1(auth token, URL + each form key and value,
sorted by key)), where the URL is the one it was given: ``NOTIFY_PUBLIC_URL`` + the path
(+ query). A missing or wrong signature answers 401, a signed form that is not a status
callback 400. ``MessageStatus`` ``delivered`` → delivered; ``undelivered``/``failed`` →
failed with the ``ErrorCode``; codes that say the number is gone (30005 unknown number,
30006 landline or unreachable carrier, 21610 opted out, 21211, 21614) also suppress it.
30003 (handset switched off or out of coverage) fails the text but does not suppress: the
phone will be back. Other statuses (queued, sending, sent, ...) change nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from delivery_svc.phone_suppressions import OPTED_OUT, UNREACHABLE
from delivery_svc.providers.base import Outcome, SmsMessage, SmsProviderSpec
from delivery_svc.sms_events import SmsEventKind, SmsStatusEvent, apply_sms_events
from delivery_svc.transport.tls import client_tls
from notify_core.constants import (
    TWILIO_CALLBACK_MAX_BYTES,
    TWILIO_DEFAULT_BASE_URL,
    TWILIO_MAX_CONNECTIONS,
    TWILIO_SIGNATURE_HEADER,
    TWILIO_TIMEOUT_SECONDS,
    TWILIO_WEBHOOK_PATH,
)
from notify_core.db.engine import Database
from notify_core.errors import ConfigError, InvalidArgument, Unauthenticated, Unavailable
from notify_core.http import read_body
from notify_core.routes import PUBLIC, HttpRoute
from notify_core.settings_decl import TEXT, Setting, SettingsGroup, url

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
ERROR_CODE = re.compile(r"^[0-9]{1,9}$")

GONE_ON_SEND: Mapping[int, str] = {21610: OPTED_OUT, 21211: UNREACHABLE, 21614: UNREACHABLE}
"""Send errors after which the number is suppressed, with the reason."""
GONE_ON_CALLBACK: Mapping[int, str] = {
    **GONE_ON_SEND,
    30005: UNREACHABLE,
    30006: UNREACHABLE,
}
"""Callback ``ErrorCode`` values after which the number is suppressed."""
AUTH_FAILED = 20003
TOO_MANY_REQUESTS = 20429
_MAX_ERROR_TEXT = 500
SIGNED = "Twilio signs each callback (X-Twilio-Signature); the route verifies it itself"


# --- Sending ----------------------------------------------------------------------------


def message_form(message: SmsMessage, sender: str) -> dict[str, str]:
    """The form fields of the Messages API request (pure)."""
    form = {"To": message.to, "Body": message.body}
    form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
    if message.status_callback:
        form["StatusCallback"] = message.status_callback
    return form


def _error(response: httpx.Response) -> tuple[int | None, str]:
    """Twilio's error code and ``status code: message (more_info)`` as one line."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        detail = response.text.strip() or response.reason_phrase
        return None, f"{response.status_code}: {detail}"[:_MAX_ERROR_TEXT]
    raw = payload.get("code")
    code = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    words = str(payload.get("message") or response.reason_phrase).strip()
    line = f"{response.status_code} {code}: {words}" if code else f"{response.status_code}: {words}"
    if payload.get("more_info"):
        line += f" ({payload['more_info']})"
    return code, line[:_MAX_ERROR_TEXT]


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def outcome_of(provider: str, response: httpx.Response) -> Outcome:
    """The outcome of one Messages API answer."""
    status = response.status_code
    if status in (200, 201):
        try:
            sid = response.json().get("sid")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            sid = None
        return Outcome.sent(provider, str(sid) if sid else None)
    code, line = _error(response)
    if code in GONE_ON_SEND:
        return Outcome.unreachable(provider, line)
    if code == AUTH_FAILED or status == 401:
        return Outcome.permanent(
            provider,
            f"{line}; Twilio refused the credentials: check NOTIFY_TWILIO_ACCOUNT_SID and "
            "NOTIFY_TWILIO_AUTH_TOKEN",
        )
    if code == TOO_MANY_REQUESTS or status == 429 or status >= 500 or status == 408:
        return Outcome.transient(provider, line, _retry_after(response))
    if 400 <= status < 500:
        return Outcome.permanent(provider, line)
    return Outcome.transient(provider, line, _retry_after(response))


class TwilioProvider:
    """:class:`~delivery_svc.providers.base.SmsProvider` for Twilio."""

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        base_url: str = TWILIO_DEFAULT_BASE_URL,
        timeout: float = TWILIO_TIMEOUT_SECONDS,
        max_connections: int = TWILIO_MAX_CONNECTIONS,
    ) -> None:
        """``sender``: an E.164 number (sent as ``From``) or a Messaging Service SID
        (``MG…``, sent as ``MessagingServiceSid``)."""
        import httpx

        self.sender = sender
        self.path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._client = httpx.AsyncClient(
            verify=client_tls(),
            base_url=base_url.rstrip("/"),
            auth=(account_sid, auth_token),
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )

    async def send(self, message: SmsMessage) -> Outcome:
        import httpx

        if not E164.match(message.to):
            return Outcome.permanent(self.name, f"{message.to!r} is not an E.164 number")
        try:
            response = await self._client.post(self.path, data=message_form(message, self.sender))
        except httpx.TimeoutException as exc:
            return Outcome.transient(self.name, f"timed out: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return Outcome.transient(self.name, f"{type(exc).__name__}: {exc}")
        return outcome_of(self.name, response)

    async def close(self) -> None:
        await self._client.aclose()


# --- Status callbacks -------------------------------------------------------------------


def status_callback_url(public_url: str) -> str:
    """The ``StatusCallback`` to send with each text: the edge's callback route."""
    return public_url.rstrip("/") + TWILIO_WEBHOOK_PATH


_KINDS: Mapping[str, SmsEventKind] = {
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
}


def parse_status_callback(
    form: Mapping[str, str], *, at: datetime | None = None
) -> SmsStatusEvent | None:
    """A status callback's form → its event; None for a status that changes nothing
    (queued, accepted, scheduled, sending, ...). Raises InvalidArgument naming a missing
    or malformed field."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not MESSAGE_SID.match(sid):
        raise InvalidArgument("MessageSid", "must be a Twilio message SID (SM + 32 hex)")
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    if not status:
        raise InvalidArgument("MessageStatus", "is required")
    kind = _KINDS.get(status)
    if kind is None:
        return None
    number = form.get("To") or ""
    raw_code = (form.get("ErrorCode") or "").strip()
    if raw_code and not ERROR_CODE.match(raw_code):
        raise InvalidArgument("ErrorCode", f"must be a number, got {raw_code!r}")
    code = int(raw_code) if raw_code else None
    suppress = GONE_ON_CALLBACK.get(code) if code is not None and kind == "failed" else None
    detail = f"{status} {code}" if code is not None else status
    return SmsStatusEvent(
        provider="twilio",
        provider_message_id=sid,
        kind=kind,
        number=number,
        detail=detail,
        at=at or datetime.now(UTC),
        suppress=suppress if E164.match(number) else None,
    )


@dataclass(frozen=True, slots=True)
class TwilioCallbacks:
    """What the callback route verifies with: the auth token and the public URL."""

    auth_token: str = field(repr=False)
    public_url: str

    def verify(self, path_and_query: str, form: FormData, signature: str | None) -> None:
        """Raise Unauthenticated unless ``signature`` is Twilio's for this post."""
        if not signature:
            raise Unauthenticated(f"the {TWILIO_SIGNATURE_HEADER} header is missing")
        # The SDK at the first callback, not at import: every edge process imports this
        # module (for its settings and route), few of them receive callbacks.
        from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

        url = self.public_url.rstrip("/") + path_and_query
        if not RequestValidator(self.auth_token).validate(url, form, signature):
            raise Unauthenticated(f"the {TWILIO_SIGNATURE_HEADER} signature does not verify")


async def _form(request: Request) -> FormData:
    body = await read_body(request, TWILIO_CALLBACK_MAX_BYTES)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidArgument("content-type", "must be application/x-www-form-urlencoded")
    try:
        pairs: list[tuple[str, str | UploadFile]] = [
            *parse_qsl(body.decode(), keep_blank_values=True)
        ]
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument("body", "is not a URL-encoded form") from None
    return FormData(pairs)


async def receive_status(
    request: Request, callbacks: TwilioCallbacks | None, database: Database
) -> Response:
    """``POST /webhooks/twilio``: verified (503 while it cannot be), then applied."""
    if callbacks is None:
        raise Unavailable(
            "Twilio status callbacks are off: they need Twilio in use (NOTIFY_SMS_PROVIDER "
            "or NOTIFY_SMS_FALLBACK twilio) and NOTIFY_PUBLIC_URL, the URL Twilio signs"
        )
    form = await _form(request)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    callbacks.verify(path, form, request.headers.get(TWILIO_SIGNATURE_HEADER))
    event = parse_status_callback({k: str(v) for k, v in form.items()})
    counts = await apply_sms_events(database, [event] if event else [])
    log.info("twilio status %s: %s", form.get("MessageStatus"), counts)
    return JSONResponse(counts)


def callbacks_receiver(
    settings: TwilioSettings | None, public_url: str | None
) -> TwilioCallbacks | None:
    """The callbacks' verifier; None (route answers 503) without Twilio or a public URL."""
    if settings is None or not public_url:
        return None
    return TwilioCallbacks(settings.auth_token, public_url)


def status_route(callbacks: TwilioCallbacks | None, database: Database) -> HttpRoute:
    """``POST /webhooks/twilio``, declared ``PUBLIC`` (it checks Twilio's signature)."""

    async def handler(request: Request) -> Response:
        return await receive_status(request, callbacks, database)

    return HttpRoute("POST", TWILIO_WEBHOOK_PATH, PUBLIC, handler, note=SIGNED)


# --- Settings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    """``NOTIFY_TWILIO_*``, checked."""

    account_sid: str
    auth_token: str = field(repr=False)
    sender: str
    """An E.164 number or a Messaging Service SID (``MG…``)."""
    base_url: str = TWILIO_DEFAULT_BASE_URL


_NAMES = ("NOTIFY_TWILIO_ACCOUNT_SID", "NOTIFY_TWILIO_AUTH_TOKEN", "NOTIFY_TWILIO_FROM")


SMS_IN_USE = "NOTIFY_SMS_PROVIDER or NOTIFY_SMS_FALLBACK"
SID_SETTING: Setting[str | None] = Setting(
    "NOTIFY_TWILIO_ACCOUNT_SID", TEXT, None, "Twilio account SID (`AC…`); required for `twilio`"
)
TOKEN_SETTING: Setting[str | None] = Setting(
    "NOTIFY_TWILIO_AUTH_TOKEN",
    TEXT,
    None,
    "Twilio auth token; also checks the signature of the status callbacks "
    "(`POST /webhooks/twilio`, signed against `NOTIFY_PUBLIC_URL`)",
    secret=True,
)
FROM_SETTING: Setting[str | None] = Setting(
    "NOTIFY_TWILIO_FROM",
    TEXT,
    None,
    "the sender: an E.164 number or a Messaging Service SID (`MG…`)",
)
BASE_URL_SETTING = Setting(
    "NOTIFY_TWILIO_BASE_URL",
    url("http", "https", trim_slash=True),
    TWILIO_DEFAULT_BASE_URL,
    "base URL of Twilio's REST API",
)
SETTINGS = SettingsGroup(
    "delivery_svc/providers/twilio.py", (SID_SETTING, TOKEN_SETTING, FROM_SETTING, BASE_URL_SETTING)
)


def read_settings(env: Mapping[str, str], in_use: bool) -> TwilioSettings | None:
    """``NOTIFY_TWILIO_*``; None when Twilio is not in use and they are unset. When it is
    in use (or any of them is set) the three are required and checked."""
    sid, token, sender = (s.read(env) for s in (SID_SETTING, TOKEN_SETTING, FROM_SETTING))
    base_url = BASE_URL_SETTING.read(env)
    if not in_use and sid is None and token is None and sender is None:
        return None
    for name, value in zip(_NAMES, (sid, token, sender), strict=True):
        if value is None:
            raise ConfigError(f"{name} is required when {SMS_IN_USE} is twilio")
    assert sid is not None and token is not None and sender is not None
    if not ACCOUNT_SID.match(sid):
        raise ConfigError("NOTIFY_TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits")
    if not (E164.match(sender) or MESSAGING_SERVICE_SID.match(sender)):
        raise ConfigError(
            "NOTIFY_TWILIO_FROM must be an E.164 number (+14155550100) or a Messaging "
            f"Service SID (MG followed by 32 hex digits), got {sender!r}"
        )
    return TwilioSettings(sid, token, sender, base_url)


def build(settings: TwilioSettings | None) -> TwilioProvider:
    if settings is None:
        raise ConfigError(f"NOTIFY_TWILIO_ACCOUNT_SID is required when {SMS_IN_USE} is twilio")
    return TwilioProvider(
        account_sid=settings.account_sid,
        auth_token=settings.auth_token,
        sender=settings.sender,
        base_url=settings.base_url,
    )


PROVIDER = SmsProviderSpec(
    name="twilio", settings=SETTINGS, read_settings=read_settings, build=build
)
