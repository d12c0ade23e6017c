"""What SMS providers report about sent texts (Twilio status callbacks), applied to the
delivery rows, and numbers put on the phone suppression list.

:func:`apply_sms_events` writes the verified :class:`SmsStatusEvent` values of one post
in one transaction. An event belongs to the ``sms`` delivery with the same ``provider``
and ``provider_message_id`` (the message SID the send returned); events matching none are
counted ``unknown`` and change nothing, suppressions included.

==========  ===============================================================================
event       effect on the delivery
==========  ===============================================================================
sent        none (the row is ``sent`` since the provider took it)
delivered   sent → delivered; ``delivered_at`` set once (as for email)
failed      sent, delivered → failed with the provider's error as ``error_message``; not a
            dead letter (a carrier refusal is not retried)
==========  ===============================================================================

An event whose ``suppress`` is set (the carrier says the number is gone for good) also
puts its number on the list, only when it is the ``recipient`` the delivery was sent to:
a message id alone must not let anyone suppress an arbitrary number. Statuses only move
forward (:data:`notify_core.domain.TRANSITIONS`), so a late or repeated callback changes
nothing: no receipts are needed (callbacks carry no event id).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from delivery_svc.phone_suppressions import normalise, suppress_number
from delivery_svc.provider_events import delivered_values, ended_values
from notify_core.db.engine import Database
from notify_core.db.schema import notification_deliveries as deliveries
from notify_core.domain import Channel, DeliveryEvent

SmsEventKind = Literal["sent", "delivered", "failed"]
log = logging.getLogger(__name__)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class SmsStatusEvent:
    """One status a provider reports for one text."""

    provider: str
    provider_message_id: str
    """``Outcome.provider_id`` of the send (Twilio's message SID, ``SM…``)."""
    kind: SmsEventKind
    number: str
    """The number it went to (E.164)."""
    detail: str
    """The provider's status and error code, e.g. ``undelivered 30005``; may be empty."""
    at: datetime
    """When we received it (Twilio's callbacks carry no time)."""
    suppress: str | None = None
    """The suppression reason (``opted_out``, ``unreachable``) when the number is gone."""


async def apply_sms_events(db: Database, events: Sequence[SmsStatusEvent]) -> dict[str, int]:
    """Apply ``events`` in one transaction; answer ``{"matched", "unknown", "suppressed"}``."""
    counts = {"matched": 0, "unknown": 0, "suppressed": 0}
    if not events:
        return counts
    d = deliveries.c
    async with db.write() as conn:
        found: dict[tuple[str, str], Any] = {}
        ids = sorted({e.provider_message_id for e in events})
        for start in range(0, len(ids), _CHUNK):
            result = await conn.execute(
                sa.select(d.id, d.recipient, d.provider, d.provider_message_id).where(
                    d.provider_message_id.in_(ids[start : start + _CHUNK]),
                    d.channel == Channel.SMS.value,
                )
            )
            for row in result:
                found[(row.provider, row.provider_message_id)] = row
        for event in sorted(events, key=lambda e: e.at):
            target = found.get((event.provider, event.provider_message_id))
            if target is None:
                counts["unknown"] += 1
                continue
            counts["matched"] += 1
            values = _values(event)
            if values:
                await conn.execute(deliveries.update().where(d.id == target.id).values(**values))
            if event.suppress and _is_recipient(event, target.id, target.recipient):
                reason, detail = event.suppress, event.detail
                added = await suppress_number(conn, event.number, reason, event.provider, detail)
                counts["suppressed"] += int(added)
    return counts


def _values(event: SmsStatusEvent) -> dict[str, Any] | None:
    if event.kind == "delivered":
        return delivered_values(event.at)
    if event.kind == "failed":
        text = f"{event.provider}: failed: {event.detail}" if event.detail else event.provider
        return ended_values(DeliveryEvent.DROPPED, text)
    return None


def _is_recipient(event: SmsStatusEvent, delivery_id: str, recipient: str | None) -> bool:
    if recipient is not None and normalise(event.number) == normalise(recipient):
        return True
    log.warning(
        "%s %s report for %r ignored for suppression: delivery %s went to %r",
        event.provider,
        event.kind,
        event.number,
        delivery_id,
        recipient,
    )
    return False
