"""Email through SendGrid's v3 Mail Send API (``POST /v3/mail/send``).

One ``httpx.AsyncClient`` (keep-alive, bounded pool) per provider. The request is the v3
JSON: one personalization with the recipient, ``from``, ``subject``, ``content`` (text/plain
first, then text/html, as SendGrid requires), our extra headers, and ``custom_args``
carrying our message id and idempotency key, which SendGrid copies into every event of
the message (see :mod:`.events`).

Answers: 202 accepted, with SendGrid's id in ``X-Message-Id``; 400, 401, 403, 413 and
other 4xx are permanent, with SendGrid's ``errors[].message`` in the text; 429 is transient
with ``Retry-After`` (seconds) when SendGrid says; 5xx, timeouts and connection errors are
transient.
"""

from __future__ import annotations

import json
import time
from email.headerregistry import Address
from typing import Any

import httpx

from delivery_svc.providers.base import EmailMessage, SendResult
from delivery_svc.transport.email_mime import check_header_value, extra_headers, parse_address
from notify_core.constants import (
    SENDGRID_DEFAULT_BASE_URL,
    SENDGRID_MAX_CONNECTIONS,
    SENDGRID_TIMEOUT_SECONDS,
)
from notify_core.errors import PermanentDeliveryError, TransientDeliveryError

CUSTOM_ARG_MESSAGE_ID = "notify_message_id"
CUSTOM_ARG_IDEMPOTENCY_KEY = "notify_idempotency_key"
_MAX_ERROR_TEXT = 500


def _party(address: Address) -> dict[str, str]:
    out = {"email": address.addr_spec}
    if address.display_name:
        out["name"] = address.display_name
    return out


def mail_send_body(message: EmailMessage, *, provider: str = "sendgrid") -> dict[str, Any]:
    """The v3 Mail Send JSON for ``message`` (pure; raises PermanentDeliveryError)."""
    sender = parse_address(provider, "sender", message.sender)
    to = parse_address(provider, "to", message.to)
    check_header_value(provider, "Subject", message.subject)
    content = [
        {"type": kind, "value": value}
        for kind, value in (("text/plain", message.text), ("text/html", message.html))
        if value
    ]
    if not content:
        raise PermanentDeliveryError(provider, "the message has neither text nor HTML")
    custom_args = {
        CUSTOM_ARG_MESSAGE_ID: message.message_id,
        CUSTOM_ARG_IDEMPOTENCY_KEY: message.idempotency_key,
    }
    body: dict[str, Any] = {
        "personalizations": [{"to": [_party(to)]}],
        "from": _party(sender),
        "subject": message.subject,
        "content": content,
        "custom_args": custom_args,
    }
    headers = dict(extra_headers(message, provider=provider))
    if headers:
        body["headers"] = headers
    if message.reply_to:
        body["reply_to"] = _party(parse_address(provider, "reply_to", message.reply_to))
    return body


def _errors_text(response: httpx.Response) -> str:
    """SendGrid's ``{"errors": [{"message", "field", "help"}]}`` as one line."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    parts: list[str] = []
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, list):
        for error in errors:
            if not isinstance(error, dict):
                continue
            text = str(error.get("message") or "").strip()
            field = error.get("field")
            parts.append(f"{text} (field {field})" if field else text)
    text = "; ".join(p for p in parts if p) or response.text.strip() or response.reason_phrase
    return text[:_MAX_ERROR_TEXT]


def _retry_after(response: httpx.Response, now: float, *, rate_limited: bool) -> float | None:
    """Seconds from ``Retry-After``; on a 429 without one, until ``X-RateLimit-Reset``."""
    raw = response.headers.get("Retry-After")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    reset = response.headers.get("X-RateLimit-Reset")
    if rate_limited and reset is not None:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return None


class SendGridProvider:
    """:class:`~delivery_svc.providers.base.EmailProvider` for SendGrid."""

    name = "sendgrid"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = SENDGRID_DEFAULT_BASE_URL,
        timeout: float = SENDGRID_TIMEOUT_SECONDS,
        max_connections: int = SENDGRID_MAX_CONNECTIONS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )

    async def send(self, message: EmailMessage) -> SendResult:
        body = mail_send_body(message, provider=self.name)
        try:
            response = await self._client.post("/v3/mail/send", json=body)
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(self.name, f"timed out: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(self.name, f"{type(exc).__name__}: {exc}") from None

        status = response.status_code
        if status in (200, 202):
            return SendResult(self.name, response.headers.get("X-Message-Id"))
        text = f"{status}: {_errors_text(response)}"
        if status == 429:
            wait = _retry_after(response, time.time(), rate_limited=True)
            raise TransientDeliveryError(self.name, text, retry_after=wait)
        if 400 <= status < 500 and status != 408:
            raise PermanentDeliveryError(self.name, text)
        wait = _retry_after(response, time.time(), rate_limited=False)
        raise TransientDeliveryError(self.name, text, retry_after=wait)

    async def close(self) -> None:
        await self._client.aclose()
