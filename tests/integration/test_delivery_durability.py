"""Kill -9 a delivery worker mid-batch (the delivery issue's acceptance test), on both
backends: every accepted email arrives, and duplicates, if any, are no more than the jobs
that were in flight at the kill.

A real SMTP server (aiosmtpd, in this process) counts what it receives by Message-ID and
takes a while over each message, so that at any moment the node has a batch of sends
open. ``notify up`` runs as a child process; once part of the emails have arrived it gets
SIGKILL, then starts again on the same database and queue. A send the server took but the
worker did not record before the kill goes out again after its lease runs out: that is
the one allowed duplicate (DESIGN §7, at-least-once), bounded by the worker's concurrency.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.support.nodes import API_KEY
from tests.support.procs import NotifyProcess, base_env, free_port
from tests.support.smtp import CountingInbox

EMAILS = 400
USERS = 8
IN_FLIGHT = 10
"""NOTIFY_DELIVERY_CONCURRENCY of the one priority used (normal): the email worker holds
at most this many claimed jobs at a time, so at most this many can be sent and not yet
recorded when the process dies."""
SMTP_DELAY = 0.1
"""Seconds the server takes over each message after reading it: ~100 emails/s through
10 connections, so the kill lands while a batch is open."""
PRODUCER = {"authorization": f"Bearer {API_KEY}"}


def _mail_env(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, namespace: str, smtp_port: int
) -> dict[str, str]:
    return {
        **base_env(kind, tmp_path, request, namespace),
        "NOTIFY_SMTP_HOST": "127.0.0.1",
        "NOTIFY_SMTP_PORT": str(smtp_port),
        "NOTIFY_SMTP_STARTTLS": "never",
        "NOTIFY_SMTP_POOL": str(IN_FLIGHT),
        "NOTIFY_EMAIL_FROM": "Notify <n@x.test>",
        "NOTIFY_DEDUP_WINDOW": "0",
        "NOTIFY_RATE_LIMITS": "email=100000/1h,inapp=100000/1m,push=100000/1h",
        "NOTIFY_DELIVERY_CONCURRENCY": f"high={IN_FLIGHT},normal={IN_FLIGHT},low={IN_FLIGHT}",
        # Nothing should fail here; if something does, its retry should not take minutes.
        "NOTIFY_RETRY_SCHEDULE": "1s,2s,5s,10s",
    }


async def _send_all(client: httpx.AsyncClient, users: list[str]) -> list[str]:
    """EMAILS normal-priority notifications to offline users, 16 requests at a time;
    every one must be accepted."""
    gate = asyncio.Semaphore(16)

    async def one(n: int) -> str:
        body = {
            "user_id": users[n % len(users)],
            "type": "kill-mail",
            "title": f"mail {n}",
            "message": f"body {n}",
            "priority": "normal",
        }
        async with gate:
            r = await client.post("/notifications/send", json=body, headers=PRODUCER)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    return list(await asyncio.gather(*(one(n) for n in range(EMAILS))))


async def _email_statuses(client: httpx.AsyncClient, ids: list[str]) -> Counter[str]:
    gate = asyncio.Semaphore(16)

    async def one(nid: str) -> str:
        async with gate:
            r = await client.get(f"/notifications/{nid}/deliveries", headers=PRODUCER)
        r.raise_for_status()
        found = {d["channel"]: d["status"] for d in r.json()["deliveries"]}
        return str(found.get("email"))

    return Counter(await asyncio.gather(*(one(nid) for nid in ids)))


async def _until(what: str, probe_ok: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Poll ``probe_ok`` every 0.2 s until it answers true."""
    deadline = time.monotonic() + timeout
    while not await probe_ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f} s")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["embedded", "real"])
async def test_kill9_mid_batch_every_email_arrives_duplicates_bounded(
    kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    namespace: str,
    record_property: Callable[[str, object], None],
) -> None:
    inbox = CountingInbox(SMTP_DELAY)
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = _mail_env(kind, tmp_path, request, namespace, smtp_port)
    log = tmp_path / "notify.log"
    node = NotifyProcess(env, log=log).start()
    try:
        users = [f"mail-{uuid.uuid4().hex[:8]}" for _ in range(USERS)]
        async with httpx.AsyncClient(base_url=node.base_url, timeout=10) as client:
            for user in users:
                r = await client.put(
                    f"/users/{user}/preferences",
                    json={"email": f"{user}@example.com"},
                    headers=PRODUCER,
                )
                assert r.status_code == 200, r.text
            ids = await _send_all(client, users)
        expected = {f"<{nid}.email@x.test>" for nid in ids}
        assert len(expected) == EMAILS

        async def some_arrived() -> bool:
            return len(inbox.counts()) >= EMAILS // 4

        await _until("a quarter of the emails arriving", some_arrived, 60)
        node.kill9()
        at_kill = inbox.counts()
        assert len(at_kill) < EMAILS, "every email arrived before the kill: slow the server"

        node = NotifyProcess(env, log=log).start()

        async def all_arrived() -> bool:
            return expected <= set(inbox.counts())

        # Jobs in flight at the kill wait for their send lease (60 s) to run out.
        await _until("every accepted email arriving", all_arrived, 180)
        async with httpx.AsyncClient(base_url=node.base_url, timeout=10) as client:
            statuses: Counter[str] = Counter()

            async def all_sent() -> bool:
                nonlocal statuses
                statuses = await _email_statuses(client, ids)
                return statuses == Counter({"sent": EMAILS})

            try:
                await _until("every email delivery recorded as sent", all_sent, 60)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; email delivery statuses: {dict(statuses)}") from None
    finally:
        node.stop()
        controller.stop()

    counts = inbox.counts()
    assert set(counts) == expected, f"unexpected Message-IDs: {set(counts) - expected}"
    doubled = {mid: n for mid, n in counts.items() if n > 1}
    extra = sum(n - 1 for n in doubled.values())
    print(
        f"\n[{kind}] {EMAILS} emails, {len(at_kill)} had arrived at the kill; "
        f"{len(doubled)} Message-IDs arrived more than once ({extra} extra copies); "
        f"bound {IN_FLIGHT} jobs in flight"
    )
    record_property("emails_at_kill", len(at_kill))
    record_property("duplicate_message_ids", len(doubled))
    record_property("duplicate_copies", extra)
    assert extra <= IN_FLIGHT, f"{extra} duplicate copies > {IN_FLIGHT} jobs in flight: {doubled}"
