"""Web push: one notification to one browser subscription (RFC 8030), its payload encrypted
for that browser (RFC 8291, ``aes128gcm``) and the request signed with our VAPID key
(RFC 8292).

A subscription is what the browser's ``PushManager.subscribe()`` gave the user, stored as
the device token ``{"endpoint": "https://...", "keys": {"auth": ..., "p256dh": ...}}``.
Every send is::

    POST <endpoint>
    authorization: vapid t=<ES256 JWT>, k=<our public key, base64url>
    content-encoding: aes128gcm
    content-type: application/octet-stream
    ttl: <seconds the push service may hold it>
    urgency: high | normal | low
    topic: <collapse key>           when the notification has one

The body is ``{"title", "body", "data"}`` as compact JSON, encrypted by ``pywebpush``
(one ``aes128gcm`` record, at most 4096 bytes: a longer body is cut to fit). The JWT's
``aud`` is the endpoint's origin, ``sub`` the operator's contact and ``exp`` 12 hours on;
one is signed per origin and reused until an hour before it expires.

The endpoint is a URL a user supplied, so the request goes through the webhook SSRF guard
(:mod:`delivery_svc.transport.guarded_http`) with the webhook allowances
(``NOTIFY_WEBHOOK_ALLOWED_HOSTS``, ``NOTIFY_WEBHOOK_ALLOW_PRIVATE``); it is always https.
One pooled client serves every send, redirects are never followed, the whole request has
a deadline and at most :data:`~notify_core.constants.WEBHOOK_MAX_RESPONSE_BYTES` of an
answer are read.

Answers:

- 2xx (201 Created, as a rule): taken; ``provider_id`` is the ``Location`` the push service gave.
- 404, 410: the subscription has expired or was withdrawn: ``Outcome.unreachable``
  (the device is deactivated).
- 413: permanent (the payload is too large for this push service).
- 408, 429, 5xx, timeouts, connection errors: transient, honouring ``Retry-After``.
- any other answer (400 malformed, 401/403 VAPID refused, 3xx): permanent, with the
  start of the answer's text.
- an endpoint the SSRF guard refuses: permanent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from delivery_svc.config_webhook import webhook_settings
from delivery_svc.providers.base import Outcome, PushMessage, PushProviderSpec
from delivery_svc.providers.webhook import (
    error_snippet,
    origin_of,
    read_bounded,
    retry_after_seconds,
)
from delivery_svc.transport.ssrf import Resolver, TargetPolicy, check_url, system_resolver
from notify_core.constants import (
    WEBHOOK_CONNECT_TIMEOUT_SECONDS,
    WEBHOOK_KEEPALIVE_SECONDS,
    WEBHOOK_MAX_CONNECTIONS,
    WEBHOOK_MAX_RESPONSE_BYTES,
)
from notify_core.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from notify_core.settings_decl import TEXT, Setting, SettingsGroup

if TYPE_CHECKING:
    import httpx

NAME: Final = "webpush"
KEY_VAR: Final = "NOTIFY_VAPID_PRIVATE_KEY"
SUBJECT_VAR: Final = "NOTIFY_VAPID_SUBJECT"

WEBPUSH_TIMEOUT_SECONDS: Final = 10.0
"""The whole request to a push service: connect, send, answer."""
VAPID_LIFETIME_SECONDS: Final = 12 * 3600
"""A VAPID JWT's ``exp`` from its signing (RFC 8292 allows at most 24 hours)."""
VAPID_REFRESH_SECONDS: Final = 3600
"""A cached JWT is signed again once it has less than this left."""
VAPID_CACHE_ORIGINS: Final = 1024
"""Origins whose JWT is kept (push services are few; endpoints are user-supplied)."""
MAX_RECORD_BYTES: Final = 4096
"""The largest encrypted body (RFC 8291 §4: push services need accept no more)."""
MAX_PLAINTEXT_BYTES: Final = MAX_RECORD_BYTES - 86 - 17
"""What fits in one record: less the header (salt, record size, key id: 86 bytes), the
padding delimiter and the AEAD tag."""
USER_AGENT: Final = "Notify-WebPush/1"

_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_URGENCY = {"high": "high", "low": "low"}


@dataclass(frozen=True, slots=True)
class WebPushSettings:
    """The VAPID identity and where endpoints may point (the webhook allowances)."""

    key_file: str
    subject: str
    """``mailto:`` or ``https:``: whom a push service contacts about our traffic."""
    private_key: ec.EllipticCurvePrivateKey = field(repr=False, compare=False)
    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()
    timeout: float = WEBPUSH_TIMEOUT_SECONDS

    @property
    def policy(self) -> TargetPolicy:
        """The SSRF policy for endpoints: the webhook allowances, https only."""
        return TargetPolicy(self.allow_private, False, self.allowed_hosts)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vapid_public_key(settings: WebPushSettings) -> str:
    """Our VAPID public key as browsers take it (``applicationServerKey``): the
    uncompressed P-256 point, base64url without padding."""
    point = settings.private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(point)


def load_vapid_key(path: str, name: str = KEY_VAR) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key in the PEM file at ``path``; ConfigError naming ``name``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path!r} ({exc.strerror or exc})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(f"{name}: {path!r} is encrypted; give an unencrypted key") from None
    except ValueError:
        raise ConfigError(
            f"{name}: {path!r} is not a PEM private key (make one with "
            "`openssl ecparam -name prime256v1 -genkey -noout`)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{name}: {path!r} must hold a P-256 (prime256v1) EC key")
    return key


def check_subject(raw: str, name: str = SUBJECT_VAR) -> str:
    """A ``mailto:`` address or an ``https:`` URL; ConfigError naming ``name``."""
    value = raw.strip()
    if re.fullmatch(r"mailto:[^@\s]+@[^@\s]+\.[^@\s]+", value):
        return value
    if re.fullmatch(r"https://[^/\s?#]+(/\S*)?", value):
        return value
    raise ConfigError(
        f"{name} must be a mailto: address or an https: URL where the push services can "
        f"reach the sender (RFC 8292), got {raw!r}"
    )


KEY_SETTING: Setting[str | None] = Setting(
    KEY_VAR,
    TEXT,
    None,
    "path of the VAPID P-256 private key (PEM) that signs web pushes (RFC 8292); endpoints "
    "are checked like webhook targets (`NOTIFY_WEBHOOK_ALLOWED_HOSTS`, "
    "`NOTIFY_WEBHOOK_ALLOW_PRIVATE`)",
    shown_default="unset: web push off",
)
SUBJECT_SETTING: Setting[str | None] = Setting(
    SUBJECT_VAR, TEXT, None, "the sender's contact, `mailto:` or `https:`; required with the key"
)
SETTINGS = SettingsGroup("delivery_svc/providers/webpush.py", (KEY_SETTING, SUBJECT_SETTING))


def read_settings(env: Mapping[str, str]) -> WebPushSettings | None:
    """``NOTIFY_VAPID_*`` checked, with the webhook allowances; None when web push is off
    (no key)."""
    key_file = KEY_SETTING.read(env) or ""
    subject = SUBJECT_SETTING.read(env) or ""
    if not key_file:
        if subject:
            raise ConfigError(f"{SUBJECT_VAR} is set but {KEY_VAR} is not: set both or neither")
        return None
    if not subject:
        raise ConfigError(f"{SUBJECT_VAR} is required with {KEY_VAR} (a mailto: or https: URL)")
    key = load_vapid_key(key_file)
    webhook = webhook_settings(env)
    return WebPushSettings(
        key_file=key_file,
        subject=check_subject(subject),
        private_key=key,
        allow_private=webhook.allow_private,
        allowed_hosts=webhook.allowed_hosts,
    )


def topic_for(collapse_key: str) -> str:
    """The ``Topic`` header for a collapse key: the key itself when it is at most 32
    characters of the URL-safe base64 alphabet (RFC 8030 §5.4), else a hash of it that is."""
    if _TOPIC_RE.match(collapse_key):
        return collapse_key
    return _b64url(hashlib.sha256(collapse_key.encode()).digest())[:32]


def encode_payload(message: PushMessage) -> bytes:
    """``{"title", "body", "data"}`` as compact JSON, the body cut (with ``…``) so that the
    whole fits one record; refused for good when even an empty body does not fit."""
    content: dict[str, Any] = {"title": message.title, "body": message.body}
    content["data"] = dict(message.data)
    raw = _compact(content)
    if len(raw) <= MAX_PLAINTEXT_BYTES:
        return raw
    content["body"] = "…"
    budget = MAX_PLAINTEXT_BYTES - len(_compact(content))
    if budget < 0:
        raise _permanent(
            f"the payload is {len(raw)} bytes and cannot be cut to {MAX_PLAINTEXT_BYTES}: "
            "the title and data alone are too long"
        )
    # The longest start of the body whose JSON form fits (that length grows with the cut).
    low, high = 0, len(message.body)
    while low < high:
        middle = (low + high + 1) // 2
        if len(_compact(message.body[:middle])) - 2 <= budget:
            low = middle
        else:
            high = middle - 1
    content["body"] = message.body[:low] + "…"
    return _compact(content)


def _compact(content: object) -> bytes:
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def _permanent(detail: str) -> DeliveryError:
    return PermanentDeliveryError(NAME, detail)


def _transient(detail: str) -> DeliveryError:
    return TransientDeliveryError(NAME, detail)


@dataclass(frozen=True, slots=True)
class Subscription:
    endpoint: str
    keys: Mapping[str, str]


def parse_subscription(token: str) -> Subscription:
    """The endpoint and keys of a stored web push token (refused for good if malformed)."""
    try:
        value = json.loads(token)
        endpoint, keys = value["endpoint"], value["keys"]
        auth, p256dh = keys["auth"], keys["p256dh"]
    except (ValueError, TypeError, KeyError):
        raise _permanent(
            'the token is not a subscription {"endpoint": ..., "keys": {"auth", "p256dh"}}'
        ) from None
    if not all(isinstance(v, str) for v in (endpoint, auth, p256dh)):
        raise _permanent("the subscription's endpoint and keys must be strings")
    if not endpoint.lower().startswith("https://"):
        raise _permanent(f"the endpoint must be an https URL (RFC 8030), got {endpoint[:80]!r}")
    return Subscription(endpoint, {"auth": auth, "p256dh": p256dh})


def encrypt(subscription: Subscription, payload: bytes) -> bytes:
    """``payload`` encrypted for the subscription's browser (RFC 8291, one record)."""
    # pywebpush (and aiohttp below it) at the first push, not at import: the module is
    # imported wherever settings are read, an edge process included.
    import http_ece  # type: ignore[import-untyped]
    from pywebpush import WebPusher, WebPushException  # type: ignore[import-untyped]

    try:
        pusher = WebPusher({"endpoint": subscription.endpoint, "keys": dict(subscription.keys)})
        body = pusher.encode(payload, content_encoding="aes128gcm")["body"]
    except (WebPushException, http_ece.ECEException, ValueError, TypeError, binascii.Error) as exc:
        raise _permanent(f"the subscription's keys are not usable ({exc})") from None
    assert isinstance(body, bytes)
    return body


def answer_outcome(
    status: int, headers: httpx.Headers, body: bytes, origin: str, now: float
) -> Outcome:
    """The outcome of a push service's answer, per the module's table."""
    if 200 <= status < 300:
        return Outcome.sent(NAME, headers.get("location"))
    said = f"{origin} answered {status}"
    if status in (404, 410):
        return Outcome.unreachable(
            NAME, f"{said}: the subscription has expired or was withdrawn{error_snippet(body)}"
        )
    if status == 413:
        return Outcome.permanent(NAME, f"{said}: the payload is too large{error_snippet(body)}")
    if status in (408, 429) or status >= 500:
        retry_after = retry_after_seconds(headers.get("retry-after"), now)
        return Outcome.transient(NAME, f"{said}{error_snippet(body)}", retry_after)
    return Outcome.permanent(NAME, f"{said}{error_snippet(body)}")


class WebPushProvider:
    """The :class:`~delivery_svc.providers.base.PushProvider` of the ``webpush`` platform."""

    name = NAME
    platform = "webpush"

    def __init__(
        self,
        settings: WebPushSettings,
        *,
        max_connections: int = WEBHOOK_MAX_CONNECTIONS,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``ssl_context`` defaults to the system's trust store (or ``SSL_CERT_FILE``)."""
        self._settings = settings
        self._policy = settings.policy
        self._public_key = vapid_public_key(settings)
        self._timeout = settings.timeout
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}
        # httpx and the guarded transport with the first sender, not at import: the
        # module is imported wherever settings are read, an edge process included.
        from delivery_svc.transport.guarded_http import guarded_client

        self._client = guarded_client(
            self._policy,
            timeout=self._timeout,
            connect_timeout=WEBHOOK_CONNECT_TIMEOUT_SECONDS,
            max_connections=max_connections,
            keepalive=WEBHOOK_KEEPALIVE_SECONDS,
            user_agent=USER_AGENT,
            ssl_context=ssl_context,
            resolver=resolver,
        )

    def authorization(self, origin: str) -> str:
        """``vapid t=<JWT>, k=<public key>`` for ``origin``, from the cache while fresh."""
        now = self._clock()
        cached = self._tokens.get(origin)
        if cached is not None and cached[1] - now > VAPID_REFRESH_SECONDS:
            return cached[0]
        expires = int(now) + VAPID_LIFETIME_SECONDS
        claims = {"aud": origin, "exp": expires, "sub": self._settings.subject}
        token = jwt.encode(claims, self._settings.private_key, algorithm="ES256")
        header = f"vapid t={token}, k={self._public_key}"
        if len(self._tokens) >= VAPID_CACHE_ORIGINS:
            self._tokens.clear()
        self._tokens[origin] = (header, float(expires))
        return header

    async def send(self, message: PushMessage) -> Outcome:
        try:
            return await self._send(message)
        except DeliveryError as exc:
            # The SSRF guard names itself ``webhook``: the refusal is this provider's.
            return replace(Outcome.refused(exc), provider=NAME)

    async def _send(self, message: PushMessage) -> Outcome:
        subscription = parse_subscription(message.token)
        url = check_url(subscription.endpoint, self._policy)
        origin = origin_of(url)
        body = encrypt(subscription, encode_payload(message))
        headers = {
            "authorization": self.authorization(origin),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "ttl": str(max(0, message.ttl)),
            "urgency": _URGENCY.get(message.priority, "normal"),
        }
        if message.collapse_key:
            headers["topic"] = topic_for(message.collapse_key)
        status, answer_headers, answer = await self._post(url, body, headers, origin)
        return answer_outcome(status, answer_headers, answer, origin, self._clock())

    async def _post(
        self, url: httpx.URL, body: bytes, headers: dict[str, str], origin: str
    ) -> tuple[int, httpx.Headers, bytes]:
        import httpx

        try:
            async with asyncio.timeout(self._timeout):
                request = self._client.build_request("POST", url, content=body, headers=headers)
                response = await self._client.send(request, stream=True)
                try:
                    answer = await read_bounded(response, WEBHOOK_MAX_RESPONSE_BYTES)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise _transient(f"{origin} did not answer within {self._timeout:g}s") from None
        except httpx.TimeoutException as exc:
            raise _transient(f"{origin} timed out ({type(exc).__name__})") from None
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            raise _permanent(f"cannot send to {origin}: {exc}") from None
        except httpx.TransportError as exc:
            raise _transient(f"could not reach {origin}: {exc or type(exc).__name__}") from None
        return response.status_code, response.headers, answer

    async def close(self) -> None:
        await self._client.aclose()


def build(settings: WebPushSettings) -> WebPushProvider:
    return WebPushProvider(settings)


PROVIDER = PushProviderSpec(
    name=NAME, platform="webpush", settings=SETTINGS, read_settings=read_settings, build=build
)
