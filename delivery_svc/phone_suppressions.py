"""The phone suppression list: numbers SMS is not sent to.

A number lands here when a provider says it is gone for good: the recipient opted out
(replied STOP: Twilio 21610, SNS ``OptedOut``), or it is not a number that can take a
text (invalid, not a mobile, unknown to the carrier). Numbers are kept in E.164 as the
providers report them (``+14155550100``); the first reason is kept.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from delivery_svc.suppressions import PHONE, add
from notify_core.db.schema import phone_suppressions

OPTED_OUT = "opted_out"
UNREACHABLE = "unreachable"
REASONS = (OPTED_OUT, UNREACHABLE)


def normalise(number: str) -> str:
    """The stored form of a number: without spaces (E.164 has none)."""
    return PHONE.normalise(number)


async def suppress_number(
    conn: AsyncConnection, number: str, reason: str, provider: str, detail: str
) -> bool:
    """Add ``number`` in the caller's transaction; False when it was there already (or is
    not a number that can be stored)."""
    if reason not in REASONS:
        return False
    return await add(PHONE, conn, number, reason, provider, detail)


async def suppressed_numbers(conn: AsyncConnection, numbers: Iterable[str]) -> set[str]:
    """Which of ``numbers`` (normalised) are on the list."""
    keys = sorted({normalise(n) for n in numbers if n})
    if not keys:
        return set()
    p = phone_suppressions.c
    result = await conn.execute(sa.select(p.number).where(p.number.in_(keys)))
    return set(result.scalars())
