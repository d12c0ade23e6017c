"""The email suppression list: addresses that bounced or complained are not sent to; and
what operators do with it and with the phone list (:mod:`delivery_svc.phone_suppressions`):
list the newest, delete one so that sends to it resume (:class:`SuppressionList`).

Addresses are kept lower-cased (``email_suppressions.address``), so the check in
:class:`~delivery_svc.channels.EmailChannel` and these functions agree whatever case a
provider reports. The first reason is kept: a later complaint about an address that
already bounced leaves the row as it is. Operators list the addresses and delete one to
let email go to it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import (
    MAX_PHONE_NUMBER,
    MAX_SUPPRESSED_ADDRESS,
    SUPPRESSIONS_DEFAULT_LIMIT,
    SUPPRESSIONS_MAX_LIMIT,
)
from notify_core.convert import iso
from notify_core.db.engine import Database
from notify_core.db.schema import email_suppressions, phone_suppressions, utcnow
from notify_core.errors import InvalidArgument, NotFound

REASONS = ("bounce", "complaint")


def normalise(address: str) -> str:
    """The stored form of an address: trimmed and lower-cased."""
    return address.strip().lower()


async def suppress(
    conn: AsyncConnection, address: str, reason: str, provider: str, detail: str
) -> bool:
    """Add ``address`` in the caller's transaction; False when it was there already (or
    is not an address that can be stored: empty or longer than an address can be)."""
    if reason not in REASONS:
        return False
    return await add(EMAIL, conn, address, reason, provider, detail)


async def add(
    which: SuppressionList,
    conn: AsyncConnection,
    value: str,
    reason: str,
    provider: str,
    detail: str,
) -> bool:
    """Add ``value`` to ``which`` in the caller's transaction; False when it was there
    already or cannot be stored (empty, or longer than the column)."""
    key = which.normalise(value)
    if not key or len(key) > which.max_length:
        return False
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    column = which.table.c[which.key]
    stmt = (
        insert(which.table)
        .values(
            {
                which.key: key,
                "reason": reason,
                "provider": provider,
                "detail": detail,
                "created_at": utcnow(),
            }
        )
        .on_conflict_do_nothing(index_elements=[column])
        .returning(column)
    )
    return (await conn.execute(stmt)).first() is not None


def _phone(number: str) -> str:
    return "".join(number.split())


@dataclass(frozen=True, slots=True)
class SuppressionList:
    """One suppression table as operators see it."""

    table: sa.Table
    key: str
    """The column that names what is suppressed (``address``, ``number``)."""
    normalise: Callable[[str], str]
    max_length: int

    def as_json(self, row: Any) -> dict[str, Any]:
        return {
            self.key: getattr(row, self.key),
            "reason": row.reason,
            "provider": row.provider,
            "detail": row.detail,
            "created_at": iso(row.created_at),
        }


EMAIL = SuppressionList(email_suppressions, "address", normalise, MAX_SUPPRESSED_ADDRESS)
PHONE = SuppressionList(phone_suppressions, "number", _phone, MAX_PHONE_NUMBER)


async def list_suppressions(
    db: Database, limit: int = SUPPRESSIONS_DEFAULT_LIMIT, which: SuppressionList = EMAIL
) -> list[dict[str, Any]]:
    """The newest suppressions of ``which`` first, at most ``limit``."""
    if not 1 <= limit <= SUPPRESSIONS_MAX_LIMIT:
        raise InvalidArgument("limit", f"must be 1 to {SUPPRESSIONS_MAX_LIMIT}, got {limit}")
    c = which.table.c
    async with db.read() as conn:
        result = await conn.execute(
            sa.select(which.table).order_by(c.created_at.desc(), c[which.key]).limit(limit)
        )
        return [which.as_json(r) for r in result]


async def unsuppress(db: Database, value: str, which: SuppressionList = EMAIL) -> dict[str, Any]:
    """Delete one entry of ``which`` and answer what it was; NotFound when absent."""
    key = which.normalise(value)
    if not key or len(key) > which.max_length:
        raise InvalidArgument(which.key, f"must be 1 to {which.max_length} characters")
    async with db.write() as conn:
        found = (
            await conn.execute(
                which.table.delete()
                .where(which.table.c[which.key] == key)
                .returning(*which.table.c)
            )
        ).first()
    if found is None:
        raise NotFound(f"{key} is not suppressed")
    return which.as_json(found)
