"""The email and webhook channels: where to send (contact points), with which provider.

Email goes to the user's address from their preferences, unless that address is
suppressed (it bounced or complained): then the delivery fails for good. The provider is
the primary one while its circuit breaker lets calls through, else the fallback.

Webhooks go to the user's webhook URL, with one breaker per target host, so one dead
endpoint does not hold back the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from delivery_svc.breaker import Breaker
from delivery_svc.compose import EmailComposer, webhook_message
from delivery_svc.failover import Failover, refused
from delivery_svc.providers.base import EmailMessage, Outcome, WebhookSender
from notify_core.config import BREAKER_RESET, BREAKER_THRESHOLD
from notify_core.db.engine import Database
from notify_core.db.schema import email_suppressions
from preference_svc.api import PreferenceStore


async def suppressed_addresses(database: Database, addresses: Sequence[str]) -> dict[str, str]:
    """Which of ``addresses`` are on the suppression list, lower-cased, with the reason."""
    if not addresses:
        return {}
    async with database.read() as conn:
        result = await conn.execute(
            sa.select(email_suppressions.c.address, email_suppressions.c.reason).where(
                email_suppressions.c.address.in_(sorted({a.lower() for a in addresses}))
            )
        )
        return {r.address: r.reason for r in result}


FailoverEmail = Failover[EmailMessage]
"""The email provider(s): the primary, or the fallback while the primary's circuit is open."""


class EmailChannel:
    name = "email"

    def __init__(
        self,
        database: Database,
        preferences: PreferenceStore,
        composer: EmailComposer,
        sender: FailoverEmail,
    ) -> None:
        self._db = database
        self._prefs = preferences
        self._composer = composer
        self.sender = sender

    def breakers(self) -> list[Breaker]:
        return list(self.sender.breakers.values())

    async def send_all(self, rows: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        stored = await self._prefs.get_many(sorted({r["user_id"] for r in rows}))
        addresses = {u: p.email for u, p in stored.items()}
        suppressed = await suppressed_addresses(self._db, [a for a in addresses.values() if a])
        return list(
            await asyncio.gather(*[self._one(r, addresses[r["user_id"]], suppressed) for r in rows])
        )

    async def _one(
        self, row: Mapping[str, Any], address: str | None, suppressed: Mapping[str, str]
    ) -> Outcome:
        if not address:
            return Outcome.permanent("email", "the user has no email address")
        if address.lower() in suppressed:
            why = f"{address} is suppressed ({suppressed[address.lower()]})"
            return Outcome.permanent("email", why)
        try:
            message = await self._composer.compose(row, address)
            outcome = await self.sender.send(message)
        except Exception as exc:
            return refused("email", exc)
        return replace(outcome, recipient=address) if outcome.ok else outcome


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        preferences: PreferenceStore,
        sender: WebhookSender,
        *,
        threshold: int = BREAKER_THRESHOLD.default,
        reset: float = BREAKER_RESET.default,
    ) -> None:
        self._prefs = preferences
        self.sender = sender
        self._threshold = threshold
        self._reset = reset
        self._breakers: dict[str, Breaker] = {}

    def breakers(self) -> list[Breaker]:
        return list(self._breakers.values())

    async def send_all(self, rows: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        stored = await self._prefs.get_many(sorted({r["user_id"] for r in rows}))
        return list(
            await asyncio.gather(*[self._one(r, stored[r["user_id"]].webhook_url) for r in rows])
        )

    async def _one(self, row: Mapping[str, Any], url: str | None) -> Outcome:
        if not url:
            return Outcome.permanent("webhook", "the user has no webhook URL")
        host = urlsplit(url).hostname or url
        breaker = self._breakers.setdefault(
            host, Breaker(f"webhook:{host}", self._threshold, self._reset)
        )
        if not breaker.allow():
            return Outcome.transient("webhook", f"the circuit of {host} is open")
        try:
            outcome = await self.sender.send(webhook_message(row, url))
        except Exception as exc:
            outcome = refused("webhook", exc)
        if outcome.retryable:
            breaker.failure()
        else:
            breaker.success()
        return outcome
