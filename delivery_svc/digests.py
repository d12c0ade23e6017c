"""Digests as a delivery: the rows the digest worker claims, and the channel that sends them.

A digest run (``digest_svc``) decides, renders and writes each digest ``pending`` in the
``digests`` table with its message, and stages a job on ``deliver.digest.low`` in the
same transaction. From there a :class:`~delivery_svc.worker.DeliveryWorker` with
:class:`DigestRows` and :class:`DigestChannel` treats it as any email delivery: claimed
with a lease, sent through the email channel's :class:`~delivery_svc.channels.FailoverEmail`
(the same providers and breakers), recorded ``sent``, ``retrying`` (with its delayed job)
or ``failed`` (a dead letter), on the same retry schedule.

What the digest carried follows its outcome. When it is sent nothing more is written to
its put-aside emails (``digested``, carrying its id): they read ``digest_sent`` because
their digest is ``sent`` (:func:`notify_core.domain.shown_status`; the run wrote each of
them once, and a digest of 20 items is now one row to record, not 21). When it fails for
good they let go of its id, in the transaction that records it, and stay put aside for
the user's next digest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from delivery_svc.breaker import Breaker
from delivery_svc.channels import FailoverEmail, suppressed_addresses
from delivery_svc.providers.base import EmailMessage, Outcome
from delivery_svc.worker import DeliveryWorker
from notify_core.config import Settings
from notify_core.constants import DIGEST_DELIVERY, DIGEST_PRIORITY
from notify_core.db.engine import Database
from notify_core.db.schema import digests
from notify_core.db.schema import notification_deliveries as deliveries
from notify_core.domain import DeliveryStatus
from notify_core.queue.base import WorkQueue


def message_json(message: EmailMessage) -> dict[str, Any]:
    """The rendered email as the ``digests.message`` column keeps it."""
    out = asdict(message)
    out["headers"] = dict(message.headers)
    return out


def message_from(stored: Mapping[str, Any]) -> EmailMessage:
    return EmailMessage(**{**stored, "headers": dict(stored.get("headers") or {})})


class DigestRows:
    """The ``digests`` rows, and the put-aside emails each one carries."""

    table = digests
    error = "error"
    key = "id"

    def scope(self) -> sa.ColumnElement[bool]:
        return digests.c.message.is_not(None)  # rows from before 0012 were never queued

    async def load(self, conn: AsyncConnection, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        d = digests.c
        result = await conn.execute(
            sa.select(d.id, d.user_id, d.attempts, d.message).where(d.id.in_(ids))
        )
        return [dict(r._mapping, priority=DIGEST_PRIORITY) for r in result]

    async def held(self, conn: AsyncConnection, ids: list[str]) -> list[tuple[str, str, datetime]]:
        d = digests.c
        others = await conn.execute(
            sa.select(d.id, d.hold_until).where(d.id.in_(ids), d.status == DeliveryStatus.SENDING)
        )
        return [(r.id, DIGEST_PRIORITY, r.hold_until) for r in others]

    async def settled(
        self, conn: AsyncConnection, sent: list[str], failed: list[str], now: datetime
    ) -> None:
        """A sent digest's items read ``digest_sent`` through it (nothing to write); a
        failed one's are put aside again."""
        d = deliveries.c
        carried = sa.and_(d.status == DeliveryStatus.DIGESTED, d.channel == "email")
        if failed:
            await conn.execute(
                deliveries.update().where(d.digest_id.in_(failed), carried).values(digest_id=None)
            )


class DigestChannel:
    """Sends a digest's stored message through the email channel's providers. An address
    suppressed since the run rendered it fails the digest for good, as it fails an email."""

    name = DIGEST_DELIVERY

    def __init__(self, database: Database, sender: FailoverEmail) -> None:
        self._db = database
        self.sender = sender

    def breakers(self) -> list[Breaker]:
        """None of its own: the email channel's breakers are this channel's, listed there."""
        return []

    async def send_all(self, rows: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        messages = [message_from(r["message"]) for r in rows]
        suppressed = await suppressed_addresses(self._db, [m.to for m in messages])
        return list(await asyncio.gather(*[self._one(m, suppressed) for m in messages]))

    async def _one(self, message: EmailMessage, suppressed: Mapping[str, str]) -> Outcome:
        why = suppressed.get(message.to.lower())
        if why is not None:
            return Outcome.permanent("email", f"{message.to} is suppressed ({why})")
        outcome = await self.sender.send(message)
        return replace(outcome, recipient=message.to) if outcome.ok else outcome


def digest_worker(
    settings: Settings,
    database: Database,
    queue: WorkQueue,
    email: FailoverEmail,
    concurrency: int,
) -> DeliveryWorker:
    """The worker of ``deliver.digest.low``: ``concurrency`` digests in flight
    (``NOTIFY_DIGEST_CONCURRENCY``), the delivery retry schedule and send lease."""
    return DeliveryWorker(
        database,
        queue,
        DigestChannel(database, email),
        concurrency={DIGEST_PRIORITY: concurrency},
        schedule=settings.retry_schedule,
        lease=settings.send_lease,
        rows=DigestRows(),
        priorities=(DIGEST_PRIORITY,),
    )
