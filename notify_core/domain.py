"""The words of the domain: channels, priorities, notification states, delivery statuses.

Each is a :class:`~enum.StrEnum` whose values are the strings stored in the database and
sent in JSON (a member compares equal to its string), so the columns, the API and the
protobuf mappings read and write exactly what they always did. Nothing here does I/O.

**Delivery statuses** move only along :data:`TRANSITIONS`, one row per event that changes
a delivery: which statuses the event applies to, and the status it leaves. A worker's
conditional ``UPDATE`` uses :func:`sources` for its ``WHERE`` (or ``CASE``) and
:func:`advance` tells the status a single row moves to. How a delivery starts (the
router's decision: ``pending``, ``delivered``, ``held``, ``merged``, ``digested`` or
``skipped``) is not a move: it is the first status the row is written with.

::

    pending ──claimed──▶ sending ──sent──▶ sent ──arrived──▶ delivered ──opened──▶ opened
    retrying ─claimed─▶ sending ──retry─▶ retrying             │  └──clicked──▶ clicked
    sending (lease lapsed) ─claimed─▶ sending          sent, delivered ──bounced──▶ bounced
    sending ──gave_up──▶ failed ──requeued──▶ pending  sent, delivered ──dropped──▶ failed
    held ──released_*──▶ pending | delivered | held | merged | digested | skipped
    digested ──digest_dropped──▶ skipped

**A put-aside email carried by a digest is written once**: the digest run sets its
``digest_id`` (status still ``digested``), and nothing writes it again when the digest is
sent. Readers see :func:`shown_status` of the row and its digest's status: ``digest_sent``
once that digest is ``sent``. (Rows recorded ``digest_sent`` before that, by the
``digest_sent`` event, read as they are.)
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Channel(StrEnum):
    INAPP = "inapp"
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    WEBPUSH = "webpush"
    WEBHOOK = "webhook"


CHANNELS: Final[tuple[Channel, ...]] = tuple(Channel)
"""Every channel, in the order the API lists them."""
DELIVERY_CHANNELS: Final[tuple[Channel, ...]] = (
    Channel.EMAIL,
    Channel.WEBHOOK,
    Channel.PUSH,
    Channel.WEBPUSH,
    Channel.SMS,
)
"""Channels with delivery workers: the router queues a job for each of their sends."""
INTERRUPTIVE: Final = frozenset({Channel.PUSH, Channel.WEBPUSH, Channel.SMS, Channel.EMAIL})
"""Channels that reach a person outside the app: quiet hours hold them."""
DEFAULT_SWITCHES: Final[Mapping[str, bool]] = MappingProxyType(
    {
        Channel.INAPP: True,
        Channel.EMAIL: True,
        Channel.SMS: False,
        Channel.PUSH: True,
        Channel.WEBPUSH: True,
        Channel.WEBHOOK: True,
    }
)
"""A user's channel switches until they set their own (SMS is opt-in)."""


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def queue_priority(self) -> int:
        """The job's queue priority: AMQP message priority, the database queue's sort key."""
        return _QUEUE_PRIORITY[self]


_QUEUE_PRIORITY: Final[Mapping[Priority, int]] = MappingProxyType(
    {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2}
)
PRIORITIES: Final[tuple[Priority, ...]] = tuple(Priority)
"""Highest first: the order delivery workers consume their queues in."""


class NotificationState(StrEnum):
    """``notifications.state``: scheduled (``send_at`` ahead) → accepted → routed or merged."""

    SCHEDULED = "scheduled"
    ACCEPTED = "accepted"
    ROUTED = "routed"
    MERGED = "merged"


class DigestRunStatus(StrEnum):
    """``digest_runs.status``: queued → running → succeeded or failed (or queued again)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    HELD = "held"
    MERGED = "merged"
    DIGESTED = "digested"
    DIGEST_SENT = "digest_sent"
    SKIPPED = "skipped"


class DeliveryEvent(StrEnum):
    """What happens to a delivery after the router first wrote it."""

    CLAIMED = "claimed"
    """A worker takes it to send (it was pending, due for a retry, or its lease lapsed)."""
    SENT = "sent"
    """The provider accepted it."""
    RETRY = "retry"
    """The try failed and another one is due later."""
    GAVE_UP = "gave_up"
    """The last try failed: a dead letter."""
    REQUEUED = "requeued"
    """An operator requeued a dead letter."""
    ARRIVED = "arrived"
    """The provider reports it delivered (or a complaint, which proves it arrived)."""
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    """The provider will not deliver it."""
    RELEASED_TO_SEND = "released_to_send"
    RELEASED_TO_INBOX = "released_to_inbox"
    HELD_AGAIN = "held_again"
    RELEASED_TO_MERGE = "released_to_merge"
    RELEASED_TO_DIGEST = "released_to_digest"
    RELEASED_TO_SKIP = "released_to_skip"
    DIGEST_SENT = "digest_sent"
    """The digest that carried it was sent."""
    DIGEST_DROPPED = "digest_dropped"
    """Its type was switched off by email before its digest went out."""


S = DeliveryStatus
E = DeliveryEvent
TRANSITIONS: Final[Mapping[DeliveryEvent, tuple[tuple[DeliveryStatus, ...], DeliveryStatus]]] = (
    MappingProxyType(
        {
            E.CLAIMED: ((S.PENDING, S.RETRYING, S.SENDING), S.SENDING),
            E.SENT: ((S.SENDING,), S.SENT),
            E.RETRY: ((S.SENDING,), S.RETRYING),
            E.GAVE_UP: ((S.SENDING,), S.FAILED),
            E.REQUEUED: ((S.FAILED,), S.PENDING),
            E.ARRIVED: ((S.SENT,), S.DELIVERED),
            E.OPENED: ((S.SENT, S.DELIVERED), S.OPENED),
            E.CLICKED: ((S.SENT, S.DELIVERED, S.OPENED), S.CLICKED),
            E.BOUNCED: ((S.SENT, S.DELIVERED), S.BOUNCED),
            E.DROPPED: ((S.SENT, S.DELIVERED), S.FAILED),
            E.RELEASED_TO_SEND: ((S.HELD,), S.PENDING),
            E.RELEASED_TO_INBOX: ((S.HELD,), S.DELIVERED),
            E.HELD_AGAIN: ((S.HELD,), S.HELD),
            E.RELEASED_TO_MERGE: ((S.HELD,), S.MERGED),
            E.RELEASED_TO_DIGEST: ((S.HELD,), S.DIGESTED),
            E.RELEASED_TO_SKIP: ((S.HELD,), S.SKIPPED),
            E.DIGEST_SENT: ((S.DIGESTED,), S.DIGEST_SENT),
            E.DIGEST_DROPPED: ((S.DIGESTED,), S.SKIPPED),
        }
    )
)
"""Every move a delivery's status makes: event → (the statuses it applies to, the result)."""
del S, E


class IllegalTransition(ValueError):
    """An event applied to a delivery in a status it does not apply to."""


def sources(event: DeliveryEvent) -> tuple[DeliveryStatus, ...]:
    """The statuses ``event`` applies to (for an ``UPDATE``'s ``WHERE`` or ``CASE``)."""
    return TRANSITIONS[event][0]


def target(event: DeliveryEvent) -> DeliveryStatus:
    """The status ``event`` leaves a delivery in."""
    return TRANSITIONS[event][1]


def advance(current: DeliveryStatus | str, event: DeliveryEvent) -> DeliveryStatus:
    """The status a delivery in ``current`` moves to on ``event``; :class:`IllegalTransition`
    when the event does not apply to that status."""
    applies_to, result = TRANSITIONS[event]
    if current not in applies_to:
        raise IllegalTransition(f"a {current} delivery cannot be {event}")
    return result


def shown_status(status: DeliveryStatus | str, digest_status: str | None) -> DeliveryStatus | str:
    """The status a reader sees of a delivery stored with ``status`` and carried by a digest
    in ``digest_status`` (None: no digest carries it): ``digest_sent`` for a put-aside email
    whose digest was sent, else the stored status. The SQL form, for set-based readers, is
    :func:`notify_core.db.shown.shown_status_sql`."""
    if status == DeliveryStatus.DIGESTED and digest_status == DeliveryStatus.SENT:
        return DeliveryStatus.DIGEST_SENT
    return status
