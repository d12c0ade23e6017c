"""What every provider offers the delivery workers: one message in, one result out.

A provider raises :class:`~notify_core.errors.PermanentDeliveryError` when retrying cannot
help and :class:`~notify_core.errors.TransientDeliveryError` when it can; nothing else
escapes it (library exceptions are translated at the provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """A rendered email, ready for any provider."""

    to: str
    sender: str
    """The From address, e.g. ``Notify <no-reply@example.com>``."""
    subject: str
    html: str
    text: str
    message_id: str
    """Stable per notification and channel (``<id@domain>``), so a resend is recognisable."""
    idempotency_key: str
    """Stable per notification and channel; sent where the provider honours one."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra headers: List-Unsubscribe, List-Unsubscribe-Post, ..."""
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    provider: str
    provider_message_id: str | None
    """The provider's id for the message, when it gives one (used to match its events)."""
    recipient: str | None = None
    """Email: the address it went to, recorded so that only it can be suppressed."""


class EmailProvider(Protocol):
    name: str

    async def send(self, message: EmailMessage) -> SendResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """One event for one endpoint."""

    url: str
    message_id: str
    """The ``webhook-id``: stable per notification, so receivers can drop duplicates."""
    payload: Mapping[str, Any]
    timestamp: int
    """Epoch seconds, sent as ``webhook-timestamp`` and signed."""


class WebhookSender(Protocol):
    name: str

    async def send(self, message: WebhookMessage) -> SendResult: ...

    async def close(self) -> None: ...
