"""Push to Android, and to browsers registered through Firebase, with the FCM HTTP v1 API
(``POST {endpoint}/v1/projects/{project_id}/messages:send``).

Authorisation is a service account's OAuth 2.0 access token
(:mod:`delivery_svc.transport.google_oauth`): fetched once, shared by every send, renewed
a minute before it expires; a 401 drops it and the send is tried once more with a new one.
Every request, the token's included, goes through one ``httpx.AsyncClient`` with HTTP/2:
one TLS connection per host carries many sends at once. TLS trusts the system store, or
the file named by ``SSL_CERT_FILE``.

The message (:func:`message_body`): ``token``, ``notification`` (title, body), ``data``
(string values: the message's, plus ``notify_send_id``, by which the app can drop a
repeat), ``android`` (``priority`` high for high-priority notifications, normal
otherwise; ``ttl`` in seconds; ``collapse_key``) and ``webpush`` headers (``TTL``,
``Urgency``, and ``Topic`` from the collapse key when web push allows it), so that a
browser's FCM token gets the same lifetime and urgency. APNs is a provider of its own.

Answers (:func:`refusal`), read from ``error.details[]``'s ``FcmError.errorCode`` or else
``error.status``: ``UNREGISTERED``, and ``INVALID_ARGUMENT`` about the token, leave the
device gone (:meth:`Outcome.unreachable`); other ``INVALID_ARGUMENT``,
``SENDER_ID_MISMATCH``, ``THIRD_PARTY_AUTH_ERROR``, ``PERMISSION_DENIED`` and
``NOT_FOUND`` are permanent, with what to fix; ``QUOTA_EXCEEDED`` (429), ``UNAVAILABLE``,
``INTERNAL`` and other 5xx, timeouts and connection errors are transient, with
``Retry-After`` (seconds or an HTTP date) when FCM gives one.

pyfcm is not used: its async path (``async_notify_multiple_devices``) runs
``asyncio.new_event_loop().run_until_complete`` and so cannot run inside a running loop
(PyFCM issue #348), its ``async_fcm.send_request`` opens an aiohttp ``ClientSession`` per
message, and its synchronous path blocks (``requests``, google-auth's token refresh, and
a ``time.sleep`` on ``Retry-After``); its credential loading is google-auth's, blocking
too. The JWT grant is a few lines on PyJWT, already a dependency.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from delivery_svc.providers.base import Outcome, PushMessage, PushProviderSpec
from delivery_svc.providers.webhook import retry_after_seconds
from delivery_svc.transport.google_oauth import (
    AccessTokens,
    ServiceAccount,
    ServiceAccountError,
    TokenRefused,
    load_service_account,
)
from delivery_svc.transport.tls import client_tls
from notify_core.constants import (
    FCM_CONNECT_TIMEOUT_SECONDS,
    FCM_DEFAULT_ENDPOINT,
    FCM_MAX_CONNECTIONS,
    FCM_MAX_ERROR_TEXT,
    FCM_SCOPE,
    FCM_TIMEOUT_SECONDS,
)
from notify_core.errors import ConfigError
from notify_core.settings_decl import TEXT, Setting, SettingsGroup, url

if TYPE_CHECKING:
    import httpx

NAME = "fcm"
CREDENTIALS = "NOTIFY_FCM_CREDENTIALS"
ENDPOINT = "NOTIFY_FCM_ENDPOINT"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
SEND_ID_KEY = "notify_send_id"
"""The data key that carries :attr:`PushMessage.send_id` to the app."""
_WEB_PUSH_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_URGENCY = {"high": "high", "normal": "normal", "low": "low"}


# --- The message --------------------------------------------------------------------------


def message_body(message: PushMessage) -> dict[str, Any]:
    """The ``messages:send`` JSON for ``message`` (pure)."""
    data = dict(message.data)
    data.setdefault(SEND_ID_KEY, message.send_id)
    ttl = max(0, int(message.ttl))
    android: dict[str, Any] = {
        "priority": "high" if message.priority == "high" else "normal",
        "ttl": f"{ttl}s",
    }
    webpush_headers = {"TTL": str(ttl), "Urgency": _URGENCY.get(message.priority, "normal")}
    if message.collapse_key:
        android["collapse_key"] = message.collapse_key
        if _WEB_PUSH_TOPIC.fullmatch(message.collapse_key):
            webpush_headers["Topic"] = message.collapse_key
    return {
        "message": {
            "token": message.token,
            "notification": {"title": message.title, "body": message.body},
            "data": data,
            "android": android,
            "webpush": {"headers": webpush_headers},
        }
    }


# --- The answer ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FcmAnswer:
    """What an error answer says: its HTTP status, FCM's code and message."""

    status: int
    code: str
    """``FcmError.errorCode``, or else ``error.status``, or else empty."""
    message: str
    token_field: bool
    """A ``google.rpc.BadRequest`` field violation names ``message.token``."""


def read_answer(status: int, raw: bytes) -> FcmAnswer:
    """Google's ``{"error": {"code", "message", "status", "details": [...]}}`` (pure)."""
    try:
        payload: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        text = raw.decode("utf-8", "replace").strip()
        return FcmAnswer(status, "", text[:FCM_MAX_ERROR_TEXT], False)
    code, token_field = str(error.get("status") or ""), False
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == FCM_ERROR_TYPE and detail.get("errorCode"):
            code = str(detail["errorCode"])
        if detail.get("@type") == BAD_REQUEST_TYPE:
            violations = detail.get("fieldViolations")
            fields = [v.get("field") for v in violations or [] if isinstance(v, dict)]
            token_field = token_field or "message.token" in fields
    message = str(error.get("message") or "").strip()[:FCM_MAX_ERROR_TEXT]
    return FcmAnswer(status, code, message, token_field)


def _about_token(answer: FcmAnswer) -> bool:
    return answer.token_field or "registration token" in answer.message.lower()


def _fix(answer: FcmAnswer, project_id: str) -> str:
    """What the operator should do about a permanent refusal that is not the device's."""
    if answer.code == "THIRD_PARTY_AUTH_ERROR":
        return (
            "the APNs or web push credentials of the Firebase project were refused: upload a "
            "valid APNs key or certificate (and web push key pair) under Project settings, "
            "Cloud Messaging, in the Firebase console"
        )
    if answer.code == "SENDER_ID_MISMATCH":
        return (
            f"the token was registered for another Firebase project than {project_id}: the "
            f"app must use this project's sender id, or {CREDENTIALS} must name the service "
            "account of the app's project"
        )
    if answer.code in ("PERMISSION_DENIED", "NOT_FOUND"):
        return (
            f"check that project {project_id} exists, has the Firebase Cloud Messaging API "
            f"enabled, and that the service account of {CREDENTIALS} may send for it"
        )
    if answer.code == "UNAUTHENTICATED":
        return f"FCM refused a fresh access token: check the service account of {CREDENTIALS}"
    return ""


def refusal(answer: FcmAnswer, retry_after: float | None, project_id: str) -> Outcome:
    """The outcome of an error answer (pure)."""
    label = " ".join(p for p in (str(answer.status), answer.code) if p)
    detail = f"{label}: {answer.message}" if answer.message else label
    if answer.code == "UNREGISTERED" or (
        answer.code == "INVALID_ARGUMENT" and _about_token(answer)
    ):
        return Outcome.unreachable(NAME, detail)
    transient = answer.code in ("QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL")
    if transient or answer.status in (408, 429) or answer.status >= 500:
        return Outcome.transient(NAME, detail, retry_after)
    fix = _fix(answer, project_id)
    return Outcome.permanent(NAME, f"{detail}; {fix}" if fix else detail)


def _auth_refused(answer: FcmAnswer) -> bool:
    """A 401 about our access token (not about the project's APNs or web push keys)."""
    return answer.status == 401 and answer.code != "THIRD_PARTY_AUTH_ERROR"


# --- The provider -------------------------------------------------------------------------


class FcmProvider:
    """:class:`~delivery_svc.providers.base.PushProvider` for FCM tokens."""

    name = NAME
    platform = "fcm"

    def __init__(
        self,
        account: ServiceAccount,
        *,
        endpoint: str = FCM_DEFAULT_ENDPOINT,
        timeout: float = FCM_TIMEOUT_SECONDS,
        max_connections: int = FCM_MAX_CONNECTIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` (monotonic seconds) times the access token's life."""
        import httpx

        self.project_id = account.project_id
        self.url = f"{endpoint.rstrip('/')}/v1/projects/{account.project_id}/messages:send"
        self._client = httpx.AsyncClient(
            http2=True,
            verify=client_tls(),
            timeout=httpx.Timeout(timeout, connect=min(timeout, FCM_CONNECT_TIMEOUT_SECONDS)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )
        self._tokens = AccessTokens(
            account, self._client, scope=FCM_SCOPE, clock=clock, source=CREDENTIALS
        )

    async def send(self, message: PushMessage) -> Outcome:
        try:
            body = json.dumps(message_body(message), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            return Outcome.permanent(NAME, f"the message cannot be sent as JSON: {exc}")
        outcome, refused_token = await self._attempt(body)
        if refused_token is None:
            return outcome
        self._tokens.invalidate(refused_token)
        outcome, _ = await self._attempt(body)
        return outcome

    async def _attempt(self, body: bytes) -> tuple[Outcome, str | None]:
        """One try; the second value is the access token when FCM refused it (401)."""
        import httpx

        try:
            token = await self._tokens.get()
        except TokenRefused as exc:
            if exc.retryable:
                return Outcome.transient(NAME, exc.detail), None
            return Outcome.permanent(NAME, exc.detail), None
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return Outcome.transient(NAME, f"timed out: {type(exc).__name__}"), None
        except httpx.HTTPError as exc:
            return Outcome.transient(NAME, f"{type(exc).__name__}: {exc}"), None
        if response.status_code == 200:
            return Outcome.sent(NAME, _message_name(response)), None
        answer = read_answer(response.status_code, response.content)
        wait = retry_after_seconds(response.headers.get("Retry-After"), time.time())
        outcome = refusal(answer, wait, self.project_id)
        return outcome, token if _auth_refused(answer) else None

    async def close(self) -> None:
        await self._client.aclose()


def _message_name(response: httpx.Response) -> str | None:
    """``projects/{project}/messages/{id}`` from a 200 answer."""
    try:
        name = response.json().get("name")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


# --- Settings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FcmSettings:
    """``NOTIFY_FCM_*``, checked: the service account read from its file."""

    credentials_file: str
    account: ServiceAccount
    endpoint: str = FCM_DEFAULT_ENDPOINT


CREDENTIALS_SETTING: Setting[str | None] = Setting(
    CREDENTIALS,
    TEXT,
    None,
    "path of a Google service-account JSON for FCM HTTP v1; its `project_id`, "
    "`client_email`, `private_key` and `token_uri` are used",
    shown_default="unset: FCM off",
)
ENDPOINT_SETTING = Setting(
    ENDPOINT,
    url("http", "https", trim_slash=True),
    FCM_DEFAULT_ENDPOINT,
    "base URL of the FCM HTTP v1 API",
)
SETTINGS = SettingsGroup("delivery_svc/providers/fcm.py", (CREDENTIALS_SETTING, ENDPOINT_SETTING))


def read_settings(env: Mapping[str, str]) -> FcmSettings | None:
    """``NOTIFY_FCM_CREDENTIALS`` (unset: FCM off) and ``NOTIFY_FCM_ENDPOINT``; the key
    file is read and checked now, so a bad one stops the node at start."""
    endpoint = ENDPOINT_SETTING.read(env)
    path = CREDENTIALS_SETTING.read(env)
    if path is None:
        return None
    try:
        account = load_service_account(path)
    except ServiceAccountError as exc:
        raise ConfigError(
            f"{CREDENTIALS} must name a Google service-account JSON key file: {path!r} {exc}"
        ) from None
    return FcmSettings(credentials_file=path, account=account, endpoint=endpoint)


def build(settings: FcmSettings) -> FcmProvider:
    return FcmProvider(settings.account, endpoint=settings.endpoint)


PROVIDER = PushProviderSpec(
    name=NAME, platform="fcm", settings=SETTINGS, read_settings=read_settings, build=build
)
