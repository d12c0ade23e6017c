"""Composing the message of one delivery: rendered content, stable ids, links and headers.

An email's ``Message-ID`` is ``<notification-id.email@sender-domain>`` and its provider
idempotency key is the delivery id: both stay the same for every try of that delivery, so
a resend is recognisable. A notification with a ``template`` is rendered by the template
service (a missing template or bad data fails the delivery for good: nothing is sent);
without one the title becomes the subject and the message the body, HTML-escaped.

With a signing secret and a public URL, HTML email gets the open pixel, click-tracked links
and RFC 8058 one-click ``List-Unsubscribe`` headers for the notification's type.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from functools import lru_cache
from typing import Any, Protocol

from delivery_svc.providers.base import EmailMessage, WebhookMessage
from notify_core.constants import UNSUBSCRIBE_TTL_SECONDS
from notify_core.convert import row_to_json
from notify_core.errors import InvalidArgument, NotFound, PermanentDeliveryError
from preference_svc.api import list_unsubscribe_headers, make_token, unsubscribe_url


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str


class Renderer(Protocol):
    """Renders a named template for a channel (the template service)."""

    async def __call__(
        self,
        name: str,
        channel: str,
        locale: str | None,
        data: Mapping[str, Any],
        notification: Mapping[str, Any],
    ) -> Rendered: ...


class Links(Protocol):
    """Tracking links (the tracking module)."""

    def decorate(self, html_body: str, delivery_id: str) -> str: ...


def default_email(title: str, message: str) -> Rendered:
    body = html.escape(message).replace("\n", "<br>\n")
    page = f"<!doctype html><html><body><h1>{html.escape(title)}</h1><p>{body}</p></body></html>"
    return Rendered(subject=title, html=page, text=f"{title}\n\n{message}\n")


@lru_cache(maxsize=64)
def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


def message_id(notification_id: str, channel: str, sender: str) -> str:
    return f"<{notification_id}.{channel}@{_domain(sender)}>"


def unsubscribe_link(
    secret: str | None, public_url: str | None, user_id: str, type_: str
) -> str | None:
    """The one-click link switching ``type_`` off by email for ``user_id`` (valid for
    ``UNSUBSCRIBE_TTL_SECONDS``); None without a signing secret and a public URL."""
    if not secret or not public_url:
        return None
    expires = int(time.time() + UNSUBSCRIBE_TTL_SECONDS)
    return unsubscribe_url(public_url, make_token(secret, user_id, type_, "email", expires))


class EmailComposer:
    def __init__(
        self,
        sender: str,
        *,
        renderer: Renderer | None = None,
        links: Links | None = None,
        public_url: str | None = None,
        signing_secret: str | None = None,
    ) -> None:
        self._sender = sender
        self._renderer = renderer
        self._links = links
        self._public_url = public_url
        self._secret = signing_secret

    async def compose(self, row: Mapping[str, Any], address: str) -> EmailMessage:
        """The email of one delivery row (joined with its notification)."""
        content = await self._content(row)
        headers: dict[str, str] = {}
        html_body = content.html
        link = unsubscribe_link(self._secret, self._public_url, row["user_id"], row["type"])
        if link is not None:
            headers.update(list_unsubscribe_headers(link))
            if self._links is not None:
                html_body = self._links.decorate(html_body, row["delivery_id"])
        return EmailMessage(
            to=address,
            sender=self._sender,
            subject=content.subject,
            html=html_body,
            text=content.text,
            message_id=message_id(row["id"], "email", self._sender),
            idempotency_key=row["delivery_id"],
            headers=headers,
        )

    async def _content(self, row: Mapping[str, Any]) -> Rendered:
        if not row["template"]:
            return default_email(row["title"], row["message"])
        if self._renderer is None:
            raise PermanentDeliveryError("template", "no template service in this process")
        try:
            return await self._renderer(
                row["template"], "email", row["locale"], row["data"] or {}, row_to_json(row)
            )
        except NotFound as exc:
            raise PermanentDeliveryError("template", exc.message) from exc
        except InvalidArgument as exc:
            raise PermanentDeliveryError("template", exc.message) from exc


def webhook_message(row: Mapping[str, Any], url: str) -> WebhookMessage:
    """The webhook event of one delivery: ``webhook-id`` is the notification's id."""
    now = datetime.now(UTC)
    return WebhookMessage(
        url=url,
        message_id=row["id"],
        payload={
            "type": "notification.created",
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "data": row_to_json(row),
        },
        timestamp=int(now.timestamp()),
    )
