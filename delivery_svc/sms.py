"""The SMS channel: one text to the user's phone number, through the SMS provider(s).

The number is the user's ``phone`` from their preferences; a number on the suppression
list (``phone_suppressions``: opted out with STOP, or not a reachable mobile number) fails
the delivery for good without a send. The text is the notification's SMS template body,
else ``title: message``, cut to ``NOTIFY_SMS_MAX_SEGMENTS`` segments
(:mod:`delivery_svc.sms_text`). The provider is the primary while its breaker lets calls
through, else the fallback (:class:`~delivery_svc.failover.Failover`).

A send a provider refuses because the number is gone (Twilio 21610, 21211, 21614; an SNS
opt-out) suppresses the number at once, so later texts to it are not attempted. The
number a send went to is recorded on the delivery (``recipient``), so Twilio's status
callbacks suppress only that number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from delivery_svc.breaker import Breaker
from delivery_svc.failover import Failover
from delivery_svc.phone_suppressions import (
    OPTED_OUT,
    UNREACHABLE,
    suppress_number,
    suppressed_numbers,
)
from delivery_svc.providers.base import Outcome, SmsMessage
from delivery_svc.sms_text import fit, sms_text
from notify_core.convert import row_to_json
from notify_core.db.engine import Database
from notify_core.errors import NotifyError
from preference_svc.api import PreferenceStore
from template_svc.api import Templates

SmsBody = Callable[[Mapping[str, Any]], Awaitable[str | None]]
"""The SMS template's body for a delivery row, or None to use ``title: message``."""


async def no_template(row: Mapping[str, Any]) -> str | None:
    return None


def template_body(templates: Templates) -> SmsBody:
    async def body(row: Mapping[str, Any]) -> str | None:
        content = await templates.render_sms(
            row["template"], row["locale"], row["data"] or {}, row_to_json(row)
        )
        return None if content is None else content.body

    return body


class SmsChannel:
    name = "sms"

    def __init__(
        self,
        database: Database,
        preferences: PreferenceStore,
        sender: Failover[SmsMessage] | None,
        *,
        max_segments: int,
        status_callback: str | None = None,
        body: SmsBody = no_template,
    ) -> None:
        self._db = database
        self._prefs = preferences
        self.sender = sender
        self._max_segments = max_segments
        self._callback = status_callback
        self._body = body

    def breakers(self) -> list[Breaker]:
        return [] if self.sender is None else list(self.sender.breakers.values())

    async def send_all(self, rows: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        stored = await self._prefs.get_many(sorted({r["user_id"] for r in rows}))
        phones = {u: p.phone for u, p in stored.items()}
        async with self._db.read() as conn:
            suppressed = await suppressed_numbers(conn, [p for p in phones.values() if p])
        outcomes = list(
            await asyncio.gather(
                *[self._one(r, phones.get(r["user_id"]), suppressed) for r in rows]
            )
        )
        await self._suppress([o for o in outcomes if o.gone and o.recipient])
        return outcomes

    async def _one(
        self, row: Mapping[str, Any], phone: str | None, suppressed: set[str]
    ) -> Outcome:
        if self.sender is None:
            return Outcome.permanent("sms", "SMS is not configured (NOTIFY_SMS_PROVIDER is unset)")
        if not phone:
            return Outcome.permanent("sms", "the user has no phone number")
        if "".join(phone.split()) in suppressed:
            return Outcome.permanent("sms", f"{phone} is suppressed (opted out or unreachable)")
        try:
            template = await self._body(row)
        except NotifyError as exc:
            return Outcome.permanent("sms", exc.message)
        text = fit(sms_text(str(row["title"]), str(row["message"]), template), self._max_segments)
        message = SmsMessage(str(row["delivery_id"]), phone, text, self._callback)
        outcome = await self.sender.send(message)
        return replace(outcome, recipient=phone) if outcome.ok or outcome.gone else outcome

    async def _suppress(self, gone: Sequence[Outcome]) -> None:
        if not gone:
            return
        async with self._db.write() as conn:
            for o in gone:
                assert o.recipient is not None
                reason = OPTED_OUT if _opted_out(o.detail) else UNREACHABLE
                await suppress_number(conn, o.recipient, reason, o.provider, o.detail)


def _opted_out(detail: str) -> bool:
    return "21610" in detail or "opted out" in detail.lower()
