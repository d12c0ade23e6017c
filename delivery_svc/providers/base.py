"""What every provider offers the delivery workers: one message in, one result out; and
what an email provider declares to be found in the registry (:class:`EmailProviderSpec`).

A provider's ``send`` answers an :class:`Outcome`: taken, refused for good, or refused for
now (``retryable``); it raises nothing for one message's failure (library exceptions are
translated at the provider). Bad configuration raises when the provider is built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from notify_core.errors import DeliveryError
from notify_core.settings_decl import SettingsGroup

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from delivery_svc.config_email import EmailSettings
    from delivery_svc.transport.sns import SnsHttp
    from notify_core.db.engine import Database

S = TypeVar("S")
"""The settings of one email provider, as its module declares them."""

IN_USE = "NOTIFY_EMAIL_PROVIDER or NOTIFY_EMAIL_FALLBACK"
"""How a provider's required setting names what makes it required."""


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
class Outcome:
    """What became of one send: taken (``ok``), or refused, for now (``retryable``) or for
    good. Providers return it; only bad configuration raises, when the provider is built."""

    ok: bool
    retryable: bool
    detail: str
    """Why it was refused (the provider's answer); empty when taken."""
    provider: str
    retry_after: float | None = None
    """Seconds the provider asked us to wait (a Retry-After header), if it said."""
    provider_id: str | None = None
    """The provider's id for the message, when it gives one (used to match its events)."""
    recipient: str | None = None
    """Email: the address it went to, recorded so that only it can be suppressed."""
    gone: bool = False
    """Push, web push, SMS: the token, subscription or number is gone for good (FCM
    ``UNREGISTERED``, APNs 410, web push 404/410, Twilio 21610): the device is deactivated
    or the number suppressed. Always with ``ok`` and ``retryable`` false."""

    @classmethod
    def sent(cls, provider: str, provider_id: str | None) -> Outcome:
        return cls(True, False, "", provider, provider_id=provider_id)

    @classmethod
    def permanent(cls, provider: str, detail: str) -> Outcome:
        """Refused for good: another try cannot help."""
        return cls(False, False, detail, provider)

    @classmethod
    def transient(cls, provider: str, detail: str, retry_after: float | None = None) -> Outcome:
        """Refused for now: worth another try (after ``retry_after`` seconds, if given)."""
        return cls(False, True, detail, provider, retry_after)

    @classmethod
    def unreachable(cls, provider: str, detail: str) -> Outcome:
        """Refused for good because the address is gone: deactivate or suppress it."""
        return cls(False, False, detail, provider, gone=True)

    @classmethod
    def refused(cls, error: DeliveryError) -> Outcome:
        """The outcome a delivery error stands for (transient ones are retryable)."""
        detail = error.message.removeprefix(f"{error.provider}: ")
        return cls(False, not error.permanent, detail, error.provider, error.retry_after)

    @property
    def message(self) -> str:
        """``provider: detail``, as it is recorded on the delivery."""
        return f"{self.provider}: {self.detail}"

    @property
    def kind(self) -> str:
        """How the worker counts a refusal: ``TransientDeliveryError`` or
        ``PermanentDeliveryError``."""
        return "TransientDeliveryError" if self.retryable else "PermanentDeliveryError"


class EmailProvider(Protocol):
    name: str

    async def send(self, message: EmailMessage) -> Outcome: ...

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

    async def send(self, message: WebhookMessage) -> Outcome: ...

    async def close(self) -> None: ...


EventKind = Literal[
    "delivered", "bounced", "complained", "opened", "clicked", "deferred", "dropped"
]


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One thing a provider tells us happened to one message for one recipient."""

    provider: str
    provider_message_id: str | None
    """Outcome.provider_id of the send (SendGrid X-Message-Id, SES MessageId)."""
    kind: EventKind
    address: str
    detail: str
    """Why (bounce diagnostic, SMTP answer, clicked URL, ...); may be empty."""
    at: datetime
    message_id: str | None = None
    """Our Message-ID, when the event carries it (SendGrid custom_args, SES headers)."""
    event_id: str | None = None
    """The provider's id of this event (sg_event_id, SNS MessageId), to drop duplicates."""


@dataclass(frozen=True, slots=True)
class EventWebhook(Generic[S]):
    """Where a provider posts its events, and how we answer."""

    path: str
    """The edge's route (``POST``)."""
    receiver: Callable[[S, SnsHttp], object | None]
    """What verifies the posts, from the provider's settings; None turns the route off."""
    handle: Callable[[Request, Any, Database], Awaitable[Response]]
    """Answers one post, given the receiver (maybe None) and the database."""


@dataclass(frozen=True, slots=True)
class EmailProviderSpec(Generic[S]):
    """An email provider as the registry knows it, with the settings its module declares
    and owns (``S``: a frozen dataclass whose every field has a default)."""

    name: str
    """Its ``NOTIFY_EMAIL_PROVIDER`` value."""
    settings: SettingsGroup
    """Its ``NOTIFY_*`` variables (start-up checks, the README's table)."""
    settings_type: type[S]
    read_settings: Callable[[Mapping[str, str], bool], S]
    """Its variables, checked, read through their declarations; the flag says it is in use
    (provider or fallback), so what it requires must be set (ConfigError)."""
    build: Callable[[S], EmailProvider]
    """The provider, from its settings; raises ConfigError when they cannot make one."""
    events: EventWebhook[S] | None = None

    def settings_of(self, email: EmailSettings) -> S:
        """This provider's settings in ``email`` (held by name); its defaults when absent."""
        value = email.providers.get(self.name)
        if value is None:
            return self.settings_type()
        if not isinstance(value, self.settings_type):
            raise TypeError(f"{self.name}: settings must be {self.settings_type.__name__}")
        return value


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One notification for one device: an FCM or APNs token, or a web push subscription."""

    send_id: str
    """A UUID stable per (delivery, device): APNs ``apns-id``, the web push/FCM dedupe key."""
    token: str
    """FCM registration token, APNs device token (hex), or the web push subscription as
    the canonical JSON ``{"endpoint": ..., "keys": {"auth": ..., "p256dh": ...}}``."""
    title: str
    body: str
    data: Mapping[str, str]
    """String values only (FCM requires it); carries ``notification_id`` and the type."""
    priority: str
    """``high``, ``normal`` or ``low`` (:class:`notify_core.domain.Priority` values)."""
    ttl: int
    """Seconds the push service may hold it for an offline device (0: now or never)."""
    collapse_key: str | None = None
    """Newer replaces older on the device (FCM collapse_key, APNs apns-collapse-id,
    web push Topic); the notification's group key when it has one."""
    badge: int | None = None
    """APNs: the user's unread count."""


class PushProvider(Protocol):
    name: str
    platform: str
    """The ``device_tokens.platform`` it serves: ``fcm``, ``apns`` or ``webpush``."""

    async def send(self, message: PushMessage) -> Outcome: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PushProviderSpec:
    """A push provider as the registry knows it (one per platform)."""

    name: str
    platform: str
    settings: SettingsGroup
    """Its ``NOTIFY_*`` variables as declared (the README's table, the start-up check)."""
    read_settings: Callable[[Mapping[str, str]], Any | None]
    """Its ``NOTIFY_*`` variables, checked (ConfigError names the variable); None when
    they are unset, which turns the platform off."""
    build: Callable[[Any], PushProvider]
    """The provider from what ``read_settings`` returned."""


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """One text for one phone number."""

    send_id: str
    """Stable per delivery: the idempotency key where the provider takes one."""
    to: str
    """E.164, e.g. ``+14155550100``."""
    body: str
    """Already cut to ``NOTIFY_SMS_MAX_SEGMENTS``."""
    status_callback: str | None = None
    """Where the provider posts status changes (Twilio ``StatusCallback``), if it does."""


class SmsProvider(Protocol):
    name: str

    async def send(self, message: SmsMessage) -> Outcome: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SmsProviderSpec:
    """An SMS provider as the registry knows it (``NOTIFY_SMS_PROVIDER`` / ``_FALLBACK``)."""

    name: str
    settings: SettingsGroup
    """Its ``NOTIFY_*`` variables as declared (the README's table, the start-up check)."""
    read_settings: Callable[[Mapping[str, str], bool], Any]
    """Its ``NOTIFY_*`` variables, checked; the flag says it is in use (provider or
    fallback), so what it requires must be set (ConfigError naming the variable)."""
    build: Callable[[Any], SmsProvider]
