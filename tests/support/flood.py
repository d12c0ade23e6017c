"""A flood of distinct sends, and the check that nothing it got accepted was lost or sent
twice more than a fault allows (the fault tests).

In the email floods every send goes to a user who is offline and has an email address, at
normal priority, so each accepted notification must end up once in its user's inbox and
once (at least) at the SMTP server (:class:`~tests.support.smtp.CountingInbox`, which
counts by Message-ID); a push flood sends at high priority to users with a device instead
(``tests/integration/test_push_faults.py``). A send answered with anything but 202, or
cut off, is not accepted: it need not arrive, but if it was stored after all it must not
arrive twice either.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa

from notify_core.auth import issue_user_token
from notify_core.db.engine import Database
from notify_core.db.schema import notification_deliveries, notifications, outbox
from tests.support.nodes import API_KEY, JWT_SECRET
from tests.support.smtp import CountingInbox, listening
from tests.support.waiting import eventually

IN_FLIGHT = 8
"""Sends one delivery process holds at a time (NOTIFY_DELIVERY_CONCURRENCY, or
NOTIFY_PUSH_CONCURRENCY, of the one priority used): a fault can leave at most this many
sent and not recorded."""
PRODUCER = {"authorization": f"Bearer {API_KEY}"}
SENDER_DOMAIN = "x.test"


SMTP_DELAY = 0.05
"""Seconds the SMTP server takes over each message after counting it: a worker's batch
stays a while in flight, where a kill or a cut can catch it."""


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[CountingInbox, int]]:
    """A real SMTP server on a free port, counting what arrives by Message-ID."""
    inbox = CountingInbox(SMTP_DELAY)
    with listening(inbox) as port:
        yield inbox, port


def fault_env() -> dict[str, str]:
    """``NOTIFY_*`` every fault test's node shares, whatever it sends through."""
    return {
        "NOTIFY_DEDUP_WINDOW": "0",
        "NOTIFY_RATE_LIMITS": "email=100000/1h,inapp=100000/1m,push=100000/1h",
        # A retry caused by a fault should come back within the test, not in minutes, and
        # so should the sends of a delivery worker that was killed.
        "NOTIFY_RETRY_SCHEDULE": "1s,2s,2s,5s,5s,10s,10s,10s",
        "NOTIFY_SEND_LEASE": "5",
        "NOTIFY_SHUTDOWN_GRACE": "1",
    }


def mail_env(smtp_port: int) -> dict[str, str]:
    """``NOTIFY_*`` for a node that emails through the test's SMTP server."""
    return {
        **fault_env(),
        "NOTIFY_SMTP_HOST": "127.0.0.1",
        "NOTIFY_SMTP_PORT": str(smtp_port),
        "NOTIFY_SMTP_STARTTLS": "never",
        "NOTIFY_SMTP_POOL": str(IN_FLIGHT),
        "NOTIFY_EMAIL_FROM": f"Notify <n@{SENDER_DOMAIN}>",
        "NOTIFY_DELIVERY_CONCURRENCY": f"high={IN_FLIGHT},normal={IN_FLIGHT},low={IN_FLIGHT}",
    }


def message_id(notification_id: str) -> str:
    return f"<{notification_id}.email@{SENDER_DOMAIN}>"


@dataclass
class Flood:
    """Distinct sends to ``users``, ``workers`` at a time, until ``target`` are accepted."""

    users: list[str]
    target: int
    priority: str = "normal"
    workers: int = 16
    accepted: dict[str, str] = field(default_factory=dict)
    """notification id -> user"""
    refused: Counter[str] = field(default_factory=Counter)
    """what the sends that were not accepted got (status code or exception)"""
    _numbers: Iterable[int] = field(default_factory=itertools.count)
    _run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @classmethod
    def of(cls, users: int, target: int, priority: str = "normal") -> Flood:
        return cls([f"flood-{uuid.uuid4().hex[:8]}" for _ in range(users)], target, priority)

    async def register(self, client: httpx.AsyncClient) -> None:
        """Give every user an email address (they never connect: all offline)."""
        for user in self.users:
            r = await client.put(
                f"/users/{user}/preferences",
                json={"email": f"{user}@example.com"},
                headers=PRODUCER,
            )
            assert r.status_code == 200, r.text

    async def run(self, client: httpx.AsyncClient) -> None:
        await asyncio.gather(*(self._worker(client) for _ in range(self.workers)))

    async def _worker(self, client: httpx.AsyncClient) -> None:
        for n in self._numbers:
            if len(self.accepted) >= self.target:
                return
            user = self.users[n % len(self.users)]
            body = {
                "user_id": user,
                "type": "fault",
                "title": f"flood {self._run}-{n}",
                "message": f"body {n}",
                "priority": self.priority,
            }
            try:
                r = await client.post("/notifications/send", json=body, headers=PRODUCER)
            except httpx.HTTPError as exc:
                self.refused[type(exc).__name__] += 1
                await asyncio.sleep(0.1)  # the node is down or restarting
                continue
            if r.status_code == 202:
                self.accepted[r.json()["id"]] = user
            else:
                assert r.status_code >= 500, r.text  # a fault is never the producer's fault
                self.refused[str(r.status_code)] += 1
                await asyncio.sleep(0.1)

    async def inbox(self, client: httpx.AsyncClient) -> list[tuple[str, str]]:
        """(id, title) of every notification in the users' inboxes."""
        found: list[tuple[str, str]] = []
        for user in self.users:
            headers = {"authorization": f"Bearer {issue_user_token(JWT_SECRET, user)}"}
            for page in itertools.count(1):
                r = await client.get(
                    "/notifications", params={"page": page, "limit": 100}, headers=headers
                )
                r.raise_for_status()
                body = r.json()
                found += [(n["id"], n["title"]) for n in body["notifications"]]
                if not body["has_more"]:
                    break
        return found


async def being_sent(database_url: str, users: list[str], channel: str = "email") -> int:
    """How many of the users' ``channel`` deliveries a worker holds (claimed, not
    recorded)."""
    d = notification_deliveries.c
    db = Database(database_url, pool_size=1)
    try:
        async with db.read() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(
                    notification_deliveries.join(
                        notifications, notifications.c.id == d.notification_id
                    )
                )
                .where(
                    notifications.c.user_id.in_(users),
                    d.channel == channel,
                    d.status == "sending",
                )
            )
    finally:
        await db.close()
    return int(count or 0)


async def delivery_statuses(db: Database, ids: list[str], channel: str) -> Counter[str]:
    """How many of the notifications' ``channel`` deliveries are in each status."""
    d = notification_deliveries.c
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(d.status, sa.func.count())
            .where(d.notification_id.in_(ids), d.channel == channel)
            .group_by(d.status)
        )
        return Counter({status: int(n) for status, n in rows})


async def outbox_left(db: Database, namespace: str) -> int:
    async with db.read() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(outbox.c.queue.startswith(f"{namespace}."))
        )
    return int(count or 0)


async def check_nothing_lost(
    flood: Flood,
    client: httpx.AsyncClient,
    smtp: CountingInbox,
    database_url: str,
    namespace: str,
    *,
    duplicates_allowed: int,
    smtp_before: Counter[str] | None = None,
    timeout: float = 90.0,
) -> str:
    """Wait until every accepted notification is in its inbox, its email has arrived and
    been recorded as sent, and the outbox is empty; then check that nothing arrived twice
    beyond ``duplicates_allowed`` extra emails (``smtp_before``: what the SMTP server had
    received before the flood). Answer a summary for the test's output."""
    before = smtp_before or Counter()
    expected = {message_id(nid) for nid in flood.accepted}
    assert len(flood.accepted) >= flood.target

    async def in_inboxes() -> set[str]:
        try:
            shown = await flood.inbox(client)
        except httpx.HTTPStatusError as exc:
            # Right after a cut a read may meet a pooled connection the cut closed: 503 is
            # the node's right answer then, and the next read gets a fresh connection.
            assert exc.response.status_code == 503, exc.response.text
            return set(flood.accepted)
        return set(flood.accepted) - {nid for nid, _ in shown}

    await eventually(in_inboxes, lambda missing: not missing, timeout)
    await eventually(
        lambda: asyncio.sleep(0, expected - set(smtp.counts() - before)),
        lambda left: not left,
        timeout,
    )
    listed = await flood.inbox(client)
    ids = [nid for nid, _ in listed]
    db = Database(database_url, pool_size=1)
    try:
        await eventually(
            lambda: delivery_statuses(db, ids, "email"),
            lambda statuses: set(statuses) == {"sent"} and statuses["sent"] == len(ids),
            timeout,
        )
        await eventually(lambda: outbox_left(db, namespace), lambda n: n == 0, timeout)
    finally:
        await db.close()

    twice = [nid for nid, n in Counter(ids).items() if n > 1]
    assert not twice, f"{len(twice)} notifications listed twice in an inbox"
    titles = [title for _, title in listed]
    again = [t for t, n in Counter(titles).items() if n > 1]
    assert not again, f"{len(again)} sends stored twice: {again[:5]}"
    counts = smtp.counts() - before
    # An email is sent only after its notification's inbox row commits: read the inboxes
    # again after the count, so that a send refused to the client but stored, and routed
    # after the listing above, is not taken for a stranger.
    in_inbox = {nid for nid, _ in await flood.inbox(client)}
    strangers = set(counts) - {message_id(nid) for nid in in_inbox}
    assert not strangers, f"emails for notifications in no inbox: {sorted(strangers)[:5]}"
    extra = sum(n - 1 for n in counts.values())
    summary = (
        f"{len(flood.accepted)} accepted, {sum(flood.refused.values())} refused "
        f"{dict(flood.refused)}, {len(ids) - len(flood.accepted)} refused but stored; "
        f"{len(counts)} emails, {extra} extra copies (at most {duplicates_allowed} allowed)"
    )
    assert extra <= duplicates_allowed, summary
    return summary
