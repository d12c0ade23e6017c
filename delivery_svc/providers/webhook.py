"""Outgoing webhooks: a JSON POST signed per the Standard Webhooks specification.

Every request carries::

    content-type: application/json
    webhook-id: <message id>              stable per notification: receivers drop repeats
    webhook-timestamp: <epoch seconds>    of this attempt, signed (receivers refuse old ones)
    webhook-signature: v1,<base64> ...    one HMAC-SHA256 per configured secret

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}`` where the body is the
compact JSON of the payload, exactly the bytes sent. Secrets are ``whsec_<base64>``
(``NOTIFY_WEBHOOK_SECRET``); listing two signs with both, so a receiver can move to a new
secret without missing a webhook.

One ``httpx.AsyncClient`` serves every send (pooled keep-alive connections). Redirects are
never followed, the whole request has a deadline, at most
:data:`~notify_core.constants.WEBHOOK_MAX_RESPONSE_BYTES` of an answer are read, and every
connection passes the SSRF guard (:mod:`delivery_svc.transport.ssrf`).

Outcomes (the Standard Webhooks status handling):

- 2xx: delivered; the outcome's ``provider_id`` is the ``webhook-id``.
- 3xx: permanent; redirects are not followed (the receiver should fix its URL).
- 410 Gone: permanent; the receiver wants no more webhooks.
- 408, 429: transient, honouring ``Retry-After``; any other 4xx: permanent.
- 5xx, timeouts, connection errors: transient (``Retry-After`` honoured when sent).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from delivery_svc.config_webhook import SECRET_VAR, WebhookSettings, webhook_secret_key
from delivery_svc.providers.base import Outcome, WebhookMessage
from delivery_svc.transport.ssrf import (
    PROVIDER,
    Resolver,
    TargetPolicy,
    check_url,
    system_resolver,
)
from notify_core.constants import (
    MAX_WEBHOOK_ID,
    WEBHOOK_CONNECT_TIMEOUT_SECONDS,
    WEBHOOK_ERROR_SNIPPET,
    WEBHOOK_KEEPALIVE_SECONDS,
    WEBHOOK_MAX_CONNECTIONS,
    WEBHOOK_MAX_RESPONSE_BYTES,
    WEBHOOK_TIMEOUT_SECONDS,
    WEBHOOK_USER_AGENT,
)
from notify_core.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

if TYPE_CHECKING:
    import httpx


def signature_header(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` per key, space-separated."""
    content = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
        for key in keys
    )


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The compact JSON body (UTF-8, no spaces): the exact bytes signed and sent."""
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PermanentDeliveryError(PROVIDER, f"the payload is not JSON ({exc})") from None
    return text.encode()


def _check_message_id(message_id: str) -> None:
    # Standard Webhooks: the id is signed before a '.', so it must not hold one.
    if (
        not message_id
        or len(message_id) > MAX_WEBHOOK_ID
        or not message_id.isascii()
        or not message_id.isprintable()
        or any(c in message_id for c in ". ")
    ):
        raise PermanentDeliveryError(
            PROVIDER,
            f"webhook-id must be 1 to {MAX_WEBHOOK_ID} printable ASCII characters without "
            f"'.' or spaces, got {message_id!r}",
        )


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` (delay-seconds or an HTTP date) as seconds from ``now``, if valid."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def origin_of(url: httpx.URL) -> str:
    """``scheme://host[:port]`` of ``url`` (the port only when not the scheme's default)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"


def error_snippet(body: bytes) -> str:
    """``": <the start of an answer's text>"`` for an error message, or empty."""
    text = body[: WEBHOOK_ERROR_SNIPPET * 4].decode("utf-8", "replace")
    text = " ".join(text.split())[:WEBHOOK_ERROR_SNIPPET]
    return f": {text}" if text else ""


def outcome_error(
    status: int, headers: httpx.Headers, body: bytes, origin: str, now: float
) -> DeliveryError | None:
    """The error for a non-2xx answer (None for 2xx), per the module's table."""
    if 200 <= status < 300:
        return None
    said = f"{origin} answered {status}"
    if 300 <= status < 400:
        location = headers.get("location")
        to = f" to {location[:WEBHOOK_ERROR_SNIPPET]}" if location else ""
        return PermanentDeliveryError(
            PROVIDER, f"{said}, a redirect{to}: redirects are not followed; fix the webhook URL"
        )
    retry_after = retry_after_seconds(headers.get("retry-after"), now)
    if status == 410:
        return PermanentDeliveryError(
            PROVIDER, f"{said} Gone: the receiver wants no more webhooks; disable the endpoint"
        )
    if status in (408, 429) or status >= 500:
        return TransientDeliveryError(
            PROVIDER, f"{said}{error_snippet(body)}", retry_after=retry_after
        )
    return PermanentDeliveryError(PROVIDER, f"{said}{error_snippet(body)}")


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body; the rest is left unread (the connection dropped)."""
    out = bytearray()
    async for chunk in response.aiter_raw():
        out += chunk[: limit - len(out)]
        if len(out) >= limit:
            break
    return bytes(out)


class HttpWebhookSender:
    """The :class:`~delivery_svc.providers.base.WebhookSender` over HTTP(S)."""

    name = PROVIDER

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        policy: TargetPolicy | None = None,
        timeout: float = WEBHOOK_TIMEOUT_SECONDS,
        connect_timeout: float = WEBHOOK_CONNECT_TIMEOUT_SECONDS,
        max_connections: int = WEBHOOK_MAX_CONNECTIONS,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``secrets``: ``whsec_…``, the current first; empty means every send fails
        permanently (checked here: a malformed one raises ConfigError)."""
        self._keys = [webhook_secret_key(s, SECRET_VAR) for s in secrets]
        self._policy = policy or TargetPolicy()
        self._timeout = timeout
        self._clock = clock
        # httpx and the guarded transport with the first sender, not at import: the
        # module is imported wherever settings are read, an edge process included.
        from delivery_svc.transport.guarded_http import guarded_client

        self._client = guarded_client(
            self._policy,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            keepalive=WEBHOOK_KEEPALIVE_SECONDS,
            user_agent=WEBHOOK_USER_AGENT,
            ssl_context=ssl_context,
            resolver=resolver,
        )

    @classmethod
    def from_settings(cls, webhook: WebhookSettings, **options: Any) -> HttpWebhookSender:
        return cls(
            webhook.secrets,
            policy=TargetPolicy.from_settings(webhook),
            timeout=webhook.timeout,
            **options,
        )

    async def send(self, message: WebhookMessage) -> Outcome:
        try:
            return await self._send(message)
        except DeliveryError as exc:
            return Outcome.refused(exc)

    async def _send(self, message: WebhookMessage) -> Outcome:
        import httpx

        if not self._keys:
            raise PermanentDeliveryError(
                PROVIDER, f"{SECRET_VAR} is not set: webhooks are only sent signed"
            )
        _check_message_id(message.message_id)
        url = check_url(message.url, self._policy)
        body = encode_payload(message.payload)
        headers = {
            "content-type": "application/json",
            "webhook-id": message.message_id,
            "webhook-timestamp": str(message.timestamp),
            "webhook-signature": signature_header(
                self._keys, message.message_id, message.timestamp, body
            ),
        }
        origin = origin_of(url)
        try:
            async with asyncio.timeout(self._timeout):
                request = self._client.build_request("POST", url, content=body, headers=headers)
                response = await self._client.send(request, stream=True)
                try:
                    answer = await read_bounded(response, WEBHOOK_MAX_RESPONSE_BYTES)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise TransientDeliveryError(
                PROVIDER, f"{origin} did not answer within {self._timeout:g}s"
            ) from None
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(
                PROVIDER, f"{origin} timed out ({type(exc).__name__})"
            ) from None
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            raise PermanentDeliveryError(PROVIDER, f"cannot send to {origin}: {exc}") from None
        except httpx.TransportError as exc:
            raise TransientDeliveryError(
                PROVIDER, f"could not reach {origin}: {exc or type(exc).__name__}"
            ) from None
        error = outcome_error(response.status_code, response.headers, answer, origin, self._clock())
        if error is not None:
            raise error
        return Outcome.sent(PROVIDER, message.message_id)

    async def close(self) -> None:
        await self._client.aclose()
