"""Push to Apple devices through APNs's HTTP/2 provider API, with token-based auth.

One ``POST {endpoint}/3/device/{token}`` per notification over one pooled HTTP/2
connection (``httpx.AsyncClient(http2=True)``; APNs takes many concurrent streams on one
connection). The provider token is an ES256 JWT (header ``alg``, ``kid``; claims ``iss`` =
team id, ``iat``) signed with the ``.p8`` key: every send shares it, and it is renewed
once it is :data:`APNS_TOKEN_RENEW_SECONDS` old, before APNs's one-hour limit (APNs also
refuses renewals more often than every 20 minutes, so it is never renewed per send).

The request: ``apns-topic`` (the bundle id), ``apns-push-type`` (``alert`` when there is a
title or body, else ``background`` with ``content-available: 1`` at priority 5),
``apns-priority`` (10 for ``high``, else 5), ``apns-expiration`` (now + ttl; 0 for "now or
never"), ``apns-collapse-id`` (the collapse key; one longer than 64 bytes, or not plain
ASCII, is replaced by its SHA-256 in hex, still stable per key), ``apns-id`` (the
message's ``send_id``). The payload is ``{"aps": ..., **data}``, at most 4 KB; a bigger one
is refused for good without being sent.

Answers: 200 taken, with APNs's ``apns-id``; 410 (``Unregistered``) and 400
``BadDeviceToken`` / ``DeviceTokenNotForTopic``: the token is gone (the device is
deactivated); 429 and 5xx: refused for now (``Retry-After`` when given); 403
``ExpiredProviderToken``: the token is renewed and that send tried once more (expired
again right after a renewal means a skewed clock: refused for now); other 4xx
(``PayloadTooLarge``, ``BadTopic``, ``InvalidProviderToken``, ...) refused for good with
APNs's ``reason``. Every request has a deadline, since APNs may leave a stream unanswered:
running out of it, or losing the connection, is refused for now, and the next send opens
a new connection. The deadline is the send's own (``asyncio.timeout``), not only httpx's:
httpx's read timeout restarts at every frame of any stream, so on a busy connection an
unanswered stream would never run out of it.

Why httpx and not ``aioapns``: aioapns (3.3.1) awaits each stream's answer with no
deadline (``APNsBaseClientProtocol.send_notification`` awaits a bare future), so an
unanswered stream blocks its caller for ever; its open issue #41 ("Connection Lost makes
infinite blocking") and #55 (``ValueError`` in ``discard_connection`` after a lost
connection, then ``MaxAttemptsExceeded``) are that failure in production. It also fixes
the host to Apple's (``APNS_SERVER`` class attributes, a sandbox flag only), gives each
connection its own JWT, and returns ``ExpiredProviderToken`` without renewing. httpx is
already a dependency, speaks HTTP/2 through ``h2``, takes per-request timeouts, and
replaces a connection that timed out or dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from delivery_svc.providers.base import Outcome, PushMessage, PushProviderSpec
from delivery_svc.transport.tls import client_tls
from notify_core.errors import ConfigError
from notify_core.settings_decl import TEXT, Setting, SettingsGroup, url

if TYPE_CHECKING:
    import httpx

APNS_DEFAULT_ENDPOINT = "https://api.push.apple.com"
APNS_SANDBOX_ENDPOINT = "https://api.sandbox.push.apple.com"
APNS_TIMEOUT_SECONDS = 10.0
"""Longest wait for one notification's answer (connecting included)."""
APNS_MAX_CONNECTIONS = 1
"""One HTTP/2 connection carries all streams; a lost one is replaced."""
APNS_TOKEN_RENEW_SECONDS = 50 * 60
"""Age at which the provider token is renewed (APNs refuses one older than an hour)."""
APNS_MAX_PAYLOAD_BYTES = 4096
APNS_MAX_COLLAPSE_ID_BYTES = 64
_MAX_REASON_TEXT = 200

KEY_FILE = "NOTIFY_APNS_KEY_FILE"
KEY_ID = "NOTIFY_APNS_KEY_ID"
TEAM_ID = "NOTIFY_APNS_TEAM_ID"
TOPIC = "NOTIFY_APNS_TOPIC"
ENDPOINT = "NOTIFY_APNS_ENDPOINT"
_REQUIRED = (KEY_FILE, KEY_ID, TEAM_ID, TOPIC)

_APPLE_ID = re.compile(r"[A-Z0-9]{10}")
"""A key id or team id as Apple shows them: ten capitals and digits."""
_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]*")
_DEVICE_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){8,100}")
"""Hex of whole bytes (32 today; Apple says the length may change)."""
_COLLAPSE_ID = re.compile(rf"[\x21-\x7e]{{1,{APNS_MAX_COLLAPSE_ID_BYTES}}}")
_GONE_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"})
EXPIRED_PROVIDER_TOKEN = "ExpiredProviderToken"


# --- Settings ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApnsSettings:
    """APNs token auth, checked: the key loaded, the ids in Apple's format."""

    key_file: str
    key_id: str
    team_id: str
    topic: str
    """The app's bundle id, sent as ``apns-topic``."""
    endpoint: str = APNS_DEFAULT_ENDPOINT
    key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False, compare=False)
    """The P-256 key read from ``key_file``."""


def load_key(path: str) -> ec.EllipticCurvePrivateKey:
    """The ``.p8`` key at ``path`` (PKCS#8 PEM, EC P-256); ConfigError naming the variable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"{KEY_FILE} cannot be read ({path}): {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{KEY_FILE} is not a PEM private key (.p8) ({path}): {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"{KEY_FILE} must hold an EC P-256 key (.p8) ({path})")
    return key


def _declared(name: str, doc: str) -> Setting[str | None]:
    return Setting(name, TEXT, None, doc, shown_default="unset: APNs off")


ENDPOINT_SETTING = Setting(
    ENDPOINT,
    url("https", trim_slash=True),
    APNS_DEFAULT_ENDPOINT,
    "APNs base URL (`https://api.sandbox.push.apple.com` for development builds)",
)
SETTINGS = SettingsGroup(
    "delivery_svc/providers/apns.py",
    (
        _declared(
            KEY_FILE,
            "APNs token auth: path of the `.p8` key (EC P-256); set all four "
            "`NOTIFY_APNS_KEY_FILE`, `_KEY_ID`, `_TEAM_ID`, `_TOPIC` or none",
        ),
        _declared(KEY_ID, "the 10-character id of the APNs key"),
        _declared(TEAM_ID, "the 10-character Apple team id"),
        _declared(TOPIC, "the app's bundle id (`apns-topic`)"),
        ENDPOINT_SETTING,
    ),
)


def read_settings(env: Mapping[str, str]) -> ApnsSettings | None:
    """The ``NOTIFY_APNS_*`` variables, checked; None when none of the four is set (APNs
    off). Some but not all, an unreadable or wrong key, or a malformed value raise
    :class:`ConfigError` naming the variable."""
    values = {s.name: s.read(env) for s in SETTINGS.settings if s.name in _REQUIRED}
    if not any(values.values()):
        return None
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ConfigError(
            f"APNs needs {', '.join(_REQUIRED)} together; {' and '.join(missing)} not set"
        )
    key_file, key_id, team_id, topic = (str(values[name]) for name in _REQUIRED)
    for name, value in ((KEY_ID, key_id), (TEAM_ID, team_id)):
        if not _APPLE_ID.fullmatch(value):
            raise ConfigError(f"{name} must be ten capital letters and digits, got {value!r}")
    if not _TOPIC.fullmatch(topic):
        raise ConfigError(f"{TOPIC} must be the app's bundle id, got {topic!r}")
    endpoint = ENDPOINT_SETTING.read(env)
    if not endpoint.startswith("https://"):
        raise ConfigError(f"{ENDPOINT} must start with https:// (APNs is HTTP/2 over TLS)")
    return ApnsSettings(
        key_file=key_file,
        key_id=key_id,
        team_id=team_id,
        topic=topic,
        endpoint=endpoint.rstrip("/"),
        key=load_key(key_file),
    )


# --- The provider token ------------------------------------------------------------------


class ProviderToken:
    """The JWT every send carries, minted once and renewed when it gets old or when APNs
    says it expired (only once per expired token, however many sends saw it refused)."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        *,
        key_id: str,
        team_id: str,
        clock: Callable[[], float] = time.time,
        renew_after: float = APNS_TOKEN_RENEW_SECONDS,
    ) -> None:
        self._key, self._key_id, self._team_id = key, key_id, team_id
        self._clock = clock
        self._renew_after = renew_after
        self._token = ""
        self._issued_at = 0

    def current(self) -> str:
        """The token to send now: the cached one while it is young enough."""
        if not self._token or self._clock() - self._issued_at >= self._renew_after:
            self._mint()
        return self._token

    def renew(self, rejected: str) -> str:
        """A new token, unless ``rejected`` was already replaced (by a concurrent send)."""
        if rejected == self._token:
            self._mint()
        return self._token

    def _mint(self) -> None:
        self._issued_at = int(self._clock())
        self._token = jwt.encode(
            {"iss": self._team_id, "iat": self._issued_at},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id, "typ": None},
        )


# --- The request and the answer (pure) ---------------------------------------------------


def collapse_id(key: str) -> str:
    """``key`` as an ``apns-collapse-id``: itself when it is at most 64 visible ASCII
    characters (what a header value carries as is), else its SHA-256 in hex (64
    characters), so that distinct keys stay distinct."""
    if _COLLAPSE_ID.fullmatch(key):
        return key
    return hashlib.sha256(key.encode()).hexdigest()


def notification_headers(message: PushMessage, *, topic: str, now: float) -> dict[str, str]:
    """The ``apns-*`` headers of ``message`` (the ``authorization`` one is added per send)."""
    alert = bool(message.title or message.body)
    headers = {
        "apns-id": message.send_id,
        "apns-topic": topic,
        "apns-push-type": "alert" if alert else "background",
        "apns-priority": "10" if alert and message.priority == "high" else "5",
        "apns-expiration": str(int(now) + message.ttl) if message.ttl > 0 else "0",
    }
    if message.collapse_key:
        headers["apns-collapse-id"] = collapse_id(message.collapse_key)
    return headers


def notification_payload(message: PushMessage) -> dict[str, Any]:
    """``{"aps": ..., **data}``: an alert (title, body, badge, ``sound`` for high priority)
    or, with neither title nor body, a background update (``content-available``; Apple
    allows no alert, sound or badge in one). ``aps`` wins over a data key of that name."""
    aps: dict[str, Any]
    if message.title or message.body:
        shown = {"title": message.title, "body": message.body}
        aps = {"alert": {k: v for k, v in shown.items() if v}}
        if message.badge is not None:
            aps["badge"] = message.badge
        if message.priority == "high":
            aps["sound"] = "default"
    else:
        aps = {"content-available": 1}
    return {**message.data, "aps": aps}


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _reason(response: httpx.Response) -> str:
    """APNs's ``{"reason": ...}``, or what the body says instead."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    reason = body.get("reason") if isinstance(body, dict) else None
    text_ = str(reason) if reason else (response.text.strip() or response.reason_phrase)
    return text_[:_MAX_REASON_TEXT]


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def answer_outcome(provider: str, response: httpx.Response) -> Outcome:
    """What APNs's answer means for the notification (see the module's docstring)."""
    status = response.status_code
    if status == 200:
        return Outcome.sent(provider, response.headers.get("apns-id"))
    reason = _reason(response)
    detail = f"{status}: {reason}"
    if status == 410 or (status == 400 and reason in _GONE_REASONS):
        return Outcome.unreachable(provider, detail)
    if status == 403 and reason == EXPIRED_PROVIDER_TOKEN:
        return Outcome.transient(provider, f"{detail} (right after a renewal: is the clock off?)")
    if status == 429 or status >= 500 or status == 408:
        return Outcome.transient(provider, detail, _retry_after(response))
    if 400 <= status < 500:
        return Outcome.permanent(provider, detail)
    return Outcome.transient(provider, detail)


# --- The provider ------------------------------------------------------------------------


class ApnsProvider:
    """:class:`~delivery_svc.providers.base.PushProvider` for APNs (platform ``apns``)."""

    name = "apns"
    platform = "apns"

    def __init__(
        self,
        settings: ApnsSettings,
        *,
        timeout: float = APNS_TIMEOUT_SECONDS,
        max_connections: int = APNS_MAX_CONNECTIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import httpx

        key = settings.key if settings.key is not None else load_key(settings.key_file)
        self.endpoint = settings.endpoint.rstrip("/")
        self.topic = settings.topic
        self._timeout = timeout
        self._clock = clock
        self.token = ProviderToken(
            key, key_id=settings.key_id, team_id=settings.team_id, clock=clock
        )
        self._client = httpx.AsyncClient(
            verify=client_tls(),
            base_url=self.endpoint,
            http2=True,
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )

    async def send(self, message: PushMessage) -> Outcome:
        if not _DEVICE_TOKEN.fullmatch(message.token):
            return Outcome.unreachable(self.name, "BadDeviceToken: not a hex device token")
        body = encode_payload(notification_payload(message))
        if len(body) > APNS_MAX_PAYLOAD_BYTES:
            return Outcome.permanent(
                self.name,
                f"PayloadTooLarge: {len(body)} bytes, APNs takes {APNS_MAX_PAYLOAD_BYTES}",
            )
        headers = notification_headers(message, topic=self.topic, now=self._clock())
        path = f"/3/device/{message.token}"
        token = self.token.current()
        response = await self._post(path, headers, body, token)
        if isinstance(response, Outcome):
            return response
        if response.status_code == 403 and _reason(response) == EXPIRED_PROVIDER_TOKEN:
            response = await self._post(path, headers, body, self.token.renew(token))
            if isinstance(response, Outcome):
                return response
        return answer_outcome(self.name, response)

    async def _post(
        self, path: str, headers: Mapping[str, str], body: bytes, token: str
    ) -> httpx.Response | Outcome:
        """APNs's answer, or the transient outcome of not getting one in time."""
        import httpx

        request_headers = {**headers, "authorization": f"bearer {token}"}
        request_headers["content-type"] = "application/json"
        try:
            async with asyncio.timeout(self._timeout):
                return await self._client.post(path, content=body, headers=request_headers)
        except (TimeoutError, httpx.TimeoutException) as exc:
            name = type(exc).__name__
            return Outcome.transient(self.name, f"no answer within {self._timeout:g} s ({name})")
        except httpx.HTTPError as exc:
            return Outcome.transient(self.name, f"{type(exc).__name__}: {exc}")
        except (httpx.InvalidURL, ValueError) as exc:  # the request cannot be made at all
            return Outcome.permanent(self.name, f"{type(exc).__name__}: {exc}")

    async def close(self) -> None:
        await self._client.aclose()


def build(settings: ApnsSettings) -> ApnsProvider:
    return ApnsProvider(settings)


PROVIDER = PushProviderSpec(
    name="apns",
    platform="apns",
    settings=SETTINGS,
    read_settings=read_settings,
    build=build,
)
