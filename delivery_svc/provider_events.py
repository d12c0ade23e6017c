"""What providers tell us about sent email, applied to the delivery rows.

:func:`apply_events` takes the verified :class:`ProviderEvent` values of one webhook post
(SendGrid's event webhook, SES through SNS) and writes them in **one transaction**.

**Matching.** An event belongs to the email delivery with the same ``provider`` and
``provider_message_id`` (SendGrid: the X-Message-Id the send returned, which is the part
of ``sg_message_id`` before its first "."; SES: its MessageId). When that finds nothing and
the event carries our Message-ID (``<notification-id.email@domain>``, which SendGrid echoes
from ``custom_args`` and SES from the headers), the email delivery of that notification
sent by that provider is used. Events matching no delivery are counted as ``unknown`` and
change nothing, suppressions included: only mail we sent can disable an address.

**Suppressing.** A bounce or complaint suppresses its address only when it is the
``recipient`` the matched delivery was sent to (compared trimmed and lower-cased); an
event naming any other address (or a delivery recorded before recipients were) changes
the delivery as usual, but suppresses nothing and is logged: a message id alone must not
let anyone put an arbitrary address on the list.

**Status ordering.** Forward only along ``sent < delivered < opened < clicked``;
``bounced`` and ``failed`` end it:

==============  ===========================================================================
event           effect on the delivery
==============  ===========================================================================
delivered       sent → delivered; ``delivered_at`` set once (also on opened/clicked rows)
opened          sent, delivered → opened; ``opens`` + 1, first ``opened_at`` kept
clicked         sent, delivered, opened → clicked; ``clicks`` + 1, first ``clicked_at``
                kept, and the notification marked clicked (as :mod:`.engagement` does for
                our own pixel and links, whose code this reuses)
bounced         sent, delivered → bounced with the provider's diagnostic as
                ``error_message``; the address is suppressed (reason ``bounce``). An opened
                or clicked delivery keeps its status: someone read it.
complained      sent → delivered (a complaint proves it arrived); the address is
                suppressed (reason ``complaint``)
dropped         sent, delivered → failed with the reason as ``error_message`` (the provider
                will not deliver it: SendGrid dropped/blocked, SES reject or transient
                bounce). Not a dead letter (``dead_at`` stays empty): not requeued.
deferred        status unchanged; a sent delivery records ``deferred: <why>`` as its
                ``error_message`` until it is delivered
==============  ===========================================================================

Anything else (pending, retrying, failed, bounced, ...) keeps its status; opens and clicks
still count. Events are applied in the order of their time.

**Idempotency.** An event with an ``event_id`` (SendGrid ``sg_event_id``, the SNS
MessageId) leaves a receipt; the same event posted again counts as ``duplicates`` and
changes nothing. Receipts are kept :data:`PROVIDER_EVENT_RECEIPT_DAYS` days. Statuses,
timestamps and suppressions are idempotent by themselves; the receipts keep the open and
click counters from counting a retried post twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from delivery_svc.engagement import count_click, count_open, forward
from delivery_svc.providers.base import ProviderEvent
from delivery_svc.suppressions import normalise, suppress
from notify_core.constants import PROVIDER_EVENT_PRUNE_BATCH, PROVIDER_EVENT_RECEIPT_DAYS
from notify_core.db.engine import Database
from notify_core.db.schema import UtcDateTime, provider_event_receipts, utcnow
from notify_core.db.schema import notification_deliveries as deliveries
from notify_core.domain import DeliveryEvent, DeliveryStatus, sources

CHANNEL = "email"
REACHED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.OPENED,
    DeliveryStatus.CLICKED,
)
"""Statuses whose ``delivered_at`` a ``delivered`` event may fill in."""
_CHUNK = 500
_OUR_MESSAGE_ID = re.compile(r"^<([0-9a-fA-F-]{36})\.email@[^<>\s]+>$")

Key = tuple[str, str]
"""(provider, provider_message_id)"""
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Target:
    """The delivery an event matched."""

    id: str
    recipient: str | None


def _empty_counts() -> dict[str, int]:
    return {"matched": 0, "duplicates": 0, "unknown": 0, "suppressed": 0}


async def apply_events(db: Database, events: Sequence[ProviderEvent]) -> dict[str, int]:
    """Apply ``events`` in one transaction; answer ``{"matched", "duplicates", "unknown",
    "suppressed"}``: events applied now, events applied before (same event id), events
    matching no delivery, and addresses newly put on the suppression list."""
    counts = _empty_counts()
    if not events:
        return counts
    ordered = sorted(events, key=lambda e: e.at)
    async with db.write() as conn:
        targets = await _match(conn, ordered)
        fresh = await _claim_receipts(conn, ordered, targets)
        for i, (event, target) in enumerate(zip(ordered, targets, strict=True)):
            if target is None:
                counts["unknown"] += 1
            elif i not in fresh:
                counts["duplicates"] += 1
            else:
                counts["matched"] += 1
                counts["suppressed"] += await _apply(conn, event, target)
    await _prune(db)
    return counts


# --- matching ---------------------------------------------------------------------------


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _our_notification(message_id: str | None) -> str | None:
    found = _OUR_MESSAGE_ID.match(message_id or "")
    return found.group(1).lower() if found else None


async def _match(conn: AsyncConnection, events: Sequence[ProviderEvent]) -> list[_Target | None]:
    """The delivery of each event (None: unknown)."""
    d = deliveries.c
    by_provider_id: dict[Key, _Target] = {}
    provider_ids = sorted({e.provider_message_id for e in events if e.provider_message_id})
    for chunk in _chunks(provider_ids):
        result = await conn.execute(
            sa.select(d.id, d.recipient, d.provider, d.provider_message_id).where(
                d.provider_message_id.in_(chunk), d.channel == CHANNEL
            )
        )
        for row in result:
            by_provider_id[(row.provider, row.provider_message_id)] = _Target(row.id, row.recipient)

    def direct(e: ProviderEvent) -> _Target | None:
        return by_provider_id.get((e.provider, e.provider_message_id or ""))

    by_notification: dict[Key, _Target] = {}
    wanted = sorted(
        {n for e in events if direct(e) is None and (n := _our_notification(e.message_id))}
    )
    for chunk in _chunks(wanted):
        result = await conn.execute(
            sa.select(d.id, d.recipient, d.provider, d.notification_id).where(
                d.notification_id.in_(chunk), d.channel == CHANNEL
            )
        )
        for row in result:
            by_notification[(row.provider or "", row.notification_id)] = _Target(
                row.id, row.recipient
            )
    out: list[_Target | None] = []
    for e in events:
        found = direct(e)
        if found is None:
            notification_id = _our_notification(e.message_id)
            if notification_id is not None:
                found = by_notification.get((e.provider, notification_id))
        out.append(found)
    return out


# --- idempotency ------------------------------------------------------------------------


def receipt_key(event: ProviderEvent) -> str | None:
    """The receipt of one event (one recipient, one kind, of one provider event id)."""
    if not event.event_id:
        return None
    parts = (event.provider, event.event_id, event.address.strip().lower(), event.kind)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


async def _claim_receipts(
    conn: AsyncConnection, events: Sequence[ProviderEvent], targets: Sequence[_Target | None]
) -> set[int]:
    """Record the receipts of the matched events; answer the indexes of the events to
    apply now (no event id, or a receipt not seen before, first of its key in the batch)."""
    fresh: set[int] = set()
    first: dict[str, int] = {}
    for i, (event, target) in enumerate(zip(events, targets, strict=True)):
        if target is None:
            continue
        key = receipt_key(event)
        if key is None:
            fresh.add(i)
        elif key not in first:
            first[key] = i
    if not first:
        return fresh
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    now = utcnow()
    keys = sorted(first)
    for chunk in _chunks(keys):
        stmt = (
            insert(provider_event_receipts)
            .values([{"key": k, "received_at": now} for k in chunk])
            .on_conflict_do_nothing(index_elements=[provider_event_receipts.c.key])
            .returning(provider_event_receipts.c.key)
        )
        fresh.update(first[k] for k in (await conn.execute(stmt)).scalars())
    return fresh


async def _prune(db: Database) -> None:
    """Forget receipts older than the retention, a bounded batch at a time."""
    r = provider_event_receipts.c
    cutoff = utcnow() - timedelta(days=PROVIDER_EVENT_RECEIPT_DAYS)
    old = sa.select(r.key).where(r.received_at < cutoff).limit(PROVIDER_EVENT_PRUNE_BATCH)
    if not db.is_sqlite:
        old = old.with_for_update(skip_locked=True)  # concurrent posts never wait on it
    async with db.write() as conn:
        await conn.execute(provider_event_receipts.delete().where(r.key.in_(old.scalar_subquery())))


# --- applying ---------------------------------------------------------------------------


def _when(statuses: tuple[DeliveryStatus, ...], then: Any, otherwise: Any) -> Any:
    return sa.case((deliveries.c.status.in_(statuses), then), else_=otherwise)


def delivered_values(at: datetime) -> dict[str, Any]:
    """The columns a ``delivered`` report writes (also SMS status callbacks')."""
    d = deliveries.c
    return {
        "status": forward(DeliveryEvent.ARRIVED),
        "delivered_at": _when(
            REACHED, sa.func.coalesce(d.delivered_at, sa.literal(at, UtcDateTime())), d.delivered_at
        ),
        "error_message": _when(sources(DeliveryEvent.ARRIVED), sa.null(), d.error_message),
    }


def ended_values(event: DeliveryEvent, error: str) -> dict[str, Any]:
    """The columns ``event`` (bounced, dropped) writes, with the provider's reason."""
    d = deliveries.c
    return {
        "status": forward(event),
        "error_message": _when(sources(event), sa.literal(error), d.error_message),
    }


def _error_text(event: ProviderEvent) -> str:
    text = f"{event.provider}: {event.kind}"
    return f"{text}: {event.detail}" if event.detail else text


async def _suppress(conn: AsyncConnection, event: ProviderEvent, target: _Target) -> bool:
    """Suppress the event's address if it is the one the delivery went to."""
    if target.recipient is None or normalise(event.address) != normalise(target.recipient):
        log.warning(
            "%s %s event for %r ignored for suppression: delivery %s went to %r",
            event.provider,
            event.kind,
            event.address,
            target.id,
            target.recipient,
        )
        return False
    reason = "complaint" if event.kind == "complained" else "bounce"
    return await suppress(conn, event.address, reason, event.provider, event.detail)


async def _apply(conn: AsyncConnection, event: ProviderEvent, target: _Target) -> int:
    """Apply one matched event; answer 1 when it put its address on the suppression list."""
    d = deliveries.c
    delivery_id = target.id
    values: dict[str, Any] | None = None
    suppressed = False
    if event.kind == "opened":
        await count_open(conn, delivery_id, event.at)
    elif event.kind == "clicked":
        await count_click(conn, delivery_id, event.at)
    elif event.kind == "delivered":
        values = delivered_values(event.at)
    elif event.kind == "complained":
        values = delivered_values(event.at)
        del values["error_message"]
        suppressed = await _suppress(conn, event, target)
    elif event.kind == "bounced":
        values = ended_values(DeliveryEvent.BOUNCED, _error_text(event))
        suppressed = await _suppress(conn, event, target)
    elif event.kind == "dropped":
        values = ended_values(DeliveryEvent.DROPPED, _error_text(event))
    elif event.kind == "deferred":
        note = sa.literal(_error_text(event))
        values = {"error_message": _when((DeliveryStatus.SENT,), note, d.error_message)}
    if values:
        await conn.execute(deliveries.update().where(d.id == delivery_id).values(**values))
    return int(suppressed)
