"""Digests end to end, on both backends, into a real SMTP server (aiosmtpd): each user's
hour in their own zone, grouped content, preferences, one-click unsubscribe, catch-up,
rate limits, and the gRPC API.

Runs are requested over gRPC "as of" chosen instants (``RunDigest.as_of``), which is how
a day of the scheduler is played in seconds: the node's own scheduler finds nobody due at
the real time (every user's first slot is hours ahead).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from notify.v1 import digest_pb2, digest_pb2_grpc, router_pb2
from notify.v1.router_pb2_grpc import RouterServiceStub

from digest_svc.config_digest import DigestSettings
from digest_svc.schedule import digest_id
from notify_app.settings import NodeSettings
from notify_core.convert import iso
from notify_core.db.schema import digests as digest_table
from notify_core.db.schema import leases, notification_preferences
from notify_core.ratelimit import Limit, RateRules
from tests.support.deliveries import delivery_row, status
from tests.support.ids import uid
from tests.support.nodes import Env, running
from tests.support.smtp import Inbox, with_smtp
from tests.support.waiting import eventually

DIGEST = DigestSettings(interval=0.05, lease=10.0, batch=3, concurrency=4)
"""Small batches: a run of a few users still goes through several record transactions."""
SUCCEEDED = digest_pb2.DIGEST_RUN_STATUS_SUCCEEDED
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


@asynccontextmanager
async def digest_node(settings: NodeSettings, port: int, **changes: Any) -> AsyncIterator[Env]:
    """A node sending email to ``port``. On PostgreSQL the database is the test session's:
    the users of earlier tests get their digests switched off, so that a run's counts are
    this test's users', and a lease left by a killed node is dropped."""
    async with running(settings, **with_smtp(settings, port, digest=DIGEST, **changes)) as env:
        assert env.node.database is not None and env.node.digest is not None
        async with env.node.database.write() as conn:
            await conn.execute(notification_preferences.update().values(digest_enabled=False))
            # a node of an earlier test that was killed may hold the scheduler lease
            await conn.execute(leases.delete().where(leases.c.holder != env.node.digest.holder))
        yield env


async def prefs(
    env: Env,
    user: str,
    *,
    tz: str = "UTC",
    hour: int = 9,
    frequency: str = "daily",
    weekday: int = 1,
    email: bool = True,
    enabled: bool = True,
    per_type: dict[str, dict[str, bool]] | None = None,
) -> str:
    """Digest preferences for ``user``; the address. The user's zone is their quiet hours'
    (none in UTC, the default zone)."""
    address = f"{user}@example.com"
    body: dict[str, Any] = {
        "digest": {"enabled": enabled, "frequency": frequency, "hour": hour, "weekday": weekday},
        "email": address if email else None,
    }
    if tz != "UTC":
        body["quiet_hours"] = {"start": "22:00", "end": "07:00", "timezone": tz}
    if per_type is not None:
        body["per_type"] = per_type
    r = await env.http.put("/preferences", json=body, headers=env.user(user))
    assert r.status_code == 200, r.text
    return address


async def put_aside(env: Env, user: str, type_: str = "comment", **fields: Any) -> str:
    """A low-priority notification: its email is put aside for the digest."""
    nid = await env.send(user, type=type_, priority="low", **fields)
    await eventually(lambda: status(env, nid), lambda d: d.get("status") == "digested")
    return nid


def stub(env: Env) -> digest_pb2_grpc.DigestServiceStub:
    return digest_pb2_grpc.DigestServiceStub(env.grpc_channel)


async def run_digest(env: Env, as_of: datetime) -> digest_pb2.DigestRun:
    """Request a run as of ``as_of`` and wait until it is done."""
    ts = Timestamp()
    ts.FromDatetime(as_of)
    queued = await stub(env).RunDigest(digest_pb2.RunDigestRequest(as_of=ts), metadata=env.metadata)
    assert queued.run.status == digest_pb2.DIGEST_RUN_STATUS_QUEUED
    done = await eventually(
        lambda: stub(env).GetDigestRun(
            digest_pb2.GetDigestRunRequest(id=queued.run.id), metadata=env.metadata
        ),
        lambda r: r.run.status in (SUCCEEDED, digest_pb2.DIGEST_RUN_STATUS_FAILED),
        timeout=30,
    )
    assert done.run.status == SUCCEEDED, done.run.error
    return done.run


def digests(inbox: Inbox, address: str) -> list[EmailMessage]:
    return [m for m in inbox.to(address) if ".digest@" in m["Message-ID"]]


async def arrived(inbox: Inbox, address: str, n: int = 1) -> list[EmailMessage]:
    """The digests to ``address`` once ``n`` have arrived: a run hands them to the
    delivery worker, which sends them after the run is done."""
    return await eventually(lambda: digests(inbox, address), lambda got: len(got) >= n)


async def digest_sent(env: Env, nid: str) -> dict[str, Any]:
    """The email delivery of ``nid`` once the digest carrying it was sent."""
    return await eventually(lambda: status(env, nid), lambda d: d.get("status") == "digest_sent")


async def test_users_in_several_zones_get_their_digest_at_their_own_hour(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    async with digest_node(settings, port) as env:
        # Zones without DST, whole-hour and not: the hour each user picks is the local hour
        # of the k-th whole UTC hour from now, so their slot falls in the hour before run k
        # (Kolkata's 09:00 comes at xx:30 UTC, Kathmandu's at xx:15).
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        plan = {"Asia/Tokyo": 2, "Asia/Kolkata": 3, "America/Phoenix": 4, "Asia/Kathmandu": 5}
        users: dict[str, tuple[str, int]] = {}
        for zone, k in plan.items():
            user = uid()
            hour = (base + timedelta(hours=k)).astimezone(ZoneInfo(zone)).hour
            users[user] = (await prefs(env, user, tz=zone, hour=hour), k)
            await put_aside(env, user)
        for k in range(1, 7):
            run = await run_digest(env, base + timedelta(hours=k))
            for user, (address, due) in users.items():
                if k >= due:
                    await arrived(inbox, address)
                got = len(digests(inbox, address))
                assert got == (1 if k >= due else 0), (user, k, due, got)
            assert run.sent == sum(1 for _, due in users.values() if due == k)


async def test_the_digest_groups_and_counts_and_marks_what_it_carried(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    # each item its own entry, though two share a group key: no grouping window
    async with digest_node(settings, port, dedup_window=0.0) as env:
        user = uid()
        address = await prefs(env, user, tz="Europe/Paris", hour=8)
        carried = [
            await put_aside(env, user, "comment", group_key="post:1", title="Ann commented"),
            await put_aside(env, user, "comment", group_key="post:1", title="Bob commented"),
            await put_aside(env, user, "comment", group_key="post:2", title="<b>Cy</b> said"),
            await put_aside(env, user, "mention", title="You were mentioned"),
        ]
        as_of = datetime.now(UTC) + timedelta(days=1, hours=1)
        run = await run_digest(env, as_of)
        assert (run.sent, run.items, run.failed) == (1, 4, 0)
        (mail,) = await arrived(inbox, address)
        day = as_of.astimezone(ZoneInfo("Europe/Paris"))
        if day.hour < 8:
            day -= timedelta(days=1)
        period = f"daily:{day.date().isoformat()}"
        assert mail["Message-ID"] == f"<{digest_id(user, period)}.digest@x.test>"
        assert mail["Subject"] == "Your daily digest: 4 new notifications"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = mail.get_body(("html",))
        text = mail.get_body(("plain",))
        assert html is not None and text is not None
        body = html.get_content()
        assert "3 new comments on 2 posts and 1 new mention." in body
        assert "&lt;b&gt;Cy&lt;/b&gt; said" in body and "<b>Cy</b>" not in body
        assert body.index("3 new comments on 2 posts</h2>") < body.index("1 new mention</h2>")
        assert "Bob commented" in text.get_content()
        for nid in carried:
            assert (await digest_sent(env, nid))["status"] == "digest_sent"
        # the next day: nothing new, no email; a new item goes in the day after's
        run = await run_digest(env, as_of + timedelta(days=1))
        assert run.sent == 0 and run.skipped_by_reason["nothing new"] == 1
        late = await put_aside(env, user, "follow", group_key="user:7")
        run = await run_digest(env, as_of + timedelta(days=2))
        assert run.sent == 1
        later = (await arrived(inbox, address, 2))[-1]
        assert "1 new follow on 1 user" in str(later.get_body(("html",)).get_content())  # type: ignore[union-attr]
        assert (await digest_sent(env, late))["status"] == "digest_sent"
        assert len(digests(inbox, address)) == 2


async def test_after_downtime_the_missed_days_make_one_digest(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    async with digest_node(settings, port) as env:
        user = uid()
        now = datetime.now(UTC)
        address = await prefs(env, user, hour=(now - timedelta(hours=2)).hour)
        await put_aside(env, user)
        # five daily slots passed while nothing ran: one digest, not five
        run = await run_digest(env, now + timedelta(days=5))
        assert run.sent == 1
        await arrived(inbox, address)
        # an hour later the next slot is still 21 hours away
        again = await run_digest(env, now + timedelta(days=5, hours=1))
        assert again.due == 0 and again.sent == 0
        assert len(digests(inbox, address)) == 1


async def test_preferences_are_respected(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    async with digest_node(settings, port) as env:
        picky, unsubscribed, no_address, disabled, weekly = (uid() for _ in range(5))
        picky_address = await prefs(env, picky, per_type={"promo": {"email": False}})
        await prefs(env, unsubscribed, per_type={"digest": {"email": False}})
        await prefs(env, no_address)
        await prefs(env, disabled, enabled=False)
        # weekly, on the weekday five days from now: not due in two days
        soon = datetime.now(UTC) + timedelta(days=2)
        weekday = (soon + timedelta(days=3)).isoweekday()
        await prefs(env, weekly, frequency="weekly", weekday=weekday)
        kept = await put_aside(env, picky, "comment")
        # sent low priority while email of type promo was on, switched off since
        await prefs(env, picky, per_type={})
        promo = await put_aside(env, picky, "promo")
        await prefs(env, picky, per_type={"promo": {"email": False}})
        for user in (unsubscribed, no_address, disabled, weekly):
            await put_aside(env, user)
        await prefs(env, no_address, email=False)  # the address went away since
        run = await run_digest(env, soon)
        assert run.sent == 1 and run.due == 3  # disabled and weekly are not due
        assert dict(run.skipped_by_reason) == {
            "unsubscribed from digests": 1,
            "no email address": 1,
        }
        (mail,) = await arrived(inbox, picky_address)
        assert "1 new comment" in str(mail.get_body(("html",)).get_content())  # type: ignore[union-attr]
        assert (await digest_sent(env, kept))["status"] == "digest_sent"
        assert (await status(env, promo))["status"] == "skipped"
        assert digests(inbox, f"{weekly}@example.com") == []
        # the weekly one's day comes
        run = await run_digest(env, soon + timedelta(days=4))
        assert len(await arrived(inbox, f"{weekly}@example.com")) == 1


async def test_the_one_click_link_stops_digests(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    async with digest_node(settings, port) as env:
        user = uid()
        address = await prefs(env, user)
        await put_aside(env, user)
        as_of = datetime.now(UTC) + timedelta(days=1, hours=1)
        await run_digest(env, as_of)
        (mail,) = await arrived(inbox, address)
        link = mail["List-Unsubscribe"].strip("<>")
        r = await env.http.post(link, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
        assert r.status_code == 200, r.text
        await put_aside(env, user)
        run = await run_digest(env, as_of + timedelta(days=1))
        assert run.skipped_by_reason["unsubscribed from digests"] == 1
        assert len(digests(inbox, address)) == 1


async def test_rate_limited_users_are_skipped_then_picked_up(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    rates = RateRules({"email": Limit(1, 2.0)})
    async with digest_node(settings, port, rate_limits=rates) as env:
        user = uid()
        address = await prefs(env, user)
        await put_aside(env, user)
        # a normal email while offline takes the one email of the window
        nid = await env.send(user, title="direct")
        await eventually(lambda: status(env, nid), lambda d: d.get("status") == "sent")
        as_of = datetime.now(UTC) + timedelta(days=1, hours=1)
        run = await run_digest(env, as_of)
        assert run.sent == 0 and run.skipped_by_reason["rate limited"] == 1
        await asyncio.sleep(2.1)  # the window frees its slot
        run = await run_digest(env, as_of + timedelta(minutes=5))
        assert run.sent == 1
        assert len(await arrived(inbox, address)) == 1


async def test_runs_over_grpc(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    _, port = smtp
    async with digest_node(settings, port) as env:
        users = [uid() for _ in range(7)]
        for user in users:
            await prefs(env, user)
            await put_aside(env, user)
        run = await run_digest(env, datetime.now(UTC) + timedelta(days=1, hours=1))
        assert (run.due, run.processed, run.sent, run.items) == (7, 7, 7, 7)
        assert run.trigger == "manual" and run.attempts == 1 and run.holder
        assert run.finished_at.ToDatetime() >= run.started_at.ToDatetime()
        assert run.duration_seconds > 0
        assert run.timings.send_seconds > 0 and run.timings.record_seconds > 0
        listed = await stub(env).ListDigestRuns(
            digest_pb2.ListDigestRunsRequest(limit=5), metadata=env.metadata
        )
        assert listed.runs[0].id == run.id
        for request, code in (
            (digest_pb2.GetDigestRunRequest(id="nope"), grpc.StatusCode.NOT_FOUND),
            (digest_pb2.GetDigestRunRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub(env).GetDigestRun(request, metadata=env.metadata)
            assert err.value.code() == code
        far = Timestamp()
        far.FromDatetime(datetime.now(UTC) + timedelta(days=400))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub(env).RunDigest(digest_pb2.RunDigestRequest(as_of=far), metadata=env.metadata)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "as_of" in (err.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub(env).ListDigestRuns(digest_pb2.ListDigestRunsRequest())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_published_template_overrides_the_built_in_one_for_its_locale(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    async with digest_node(settings, port) as env:
        r = await env.http.put(
            "/templates/digest/email",
            json={
                "locale": "fr",
                "subject": "Votre résumé : {{ total }}",
                "body": "<p>{% for g in groups %}{{ g.count }} x {{ g.type }} {% endfor %}</p>",
            },
            headers=env.producer,
        )
        assert r.status_code == 201, r.text
        french, english = uid(), uid()
        fr_address = await prefs(env, french)
        en_address = await prefs(env, english)
        await put_aside(env, french, locale="fr-CA")
        await put_aside(env, english, locale="en")
        await run_digest(env, datetime.now(UTC) + timedelta(days=1, hours=1))
        (fr,) = await arrived(inbox, fr_address)
        (en,) = await arrived(inbox, en_address)
        assert fr["Subject"] == "Votre résumé : 1"
        assert "1 x comment" in str(fr.get_body(("html",)).get_content())  # type: ignore[union-attr]
        assert en["Subject"] == "Your daily digest: 1 new notification"


async def test_a_template_failing_to_render_falls_back_to_the_built_in_one(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    """A published template that fails at render time (here: a division by zero) fails
    for every digest of its locale in the batch; each goes out with the built-in one."""
    inbox, port = smtp
    async with digest_node(settings, port) as env:
        r = await env.http.put(
            "/templates/digest/email",
            json={"locale": "de", "subject": "{{ 1 // (total - total) }}", "body": "<p>x</p>"},
            headers=env.producer,
        )
        assert r.status_code == 201, r.text
        users = [uid() for _ in range(4)]  # over two batches of the run (DIGEST.batch = 3)
        addresses = [await prefs(env, u) for u in users]
        for u in users:
            await put_aside(env, u, locale="de")
        run = await run_digest(env, datetime.now(UTC) + timedelta(days=1, hours=1))
        assert (run.sent, run.failed) == (4, 0)
        for address in addresses:
            (mail,) = await arrived(inbox, address)
            assert mail["Subject"] == "Your daily digest: 1 new notification"


async def digest_row(env: Env, user: str) -> dict[str, Any]:
    """The user's latest ``digests`` row ({} before there is one)."""
    assert env.node.database is not None
    query = (
        sa.select(digest_table)
        .where(digest_table.c.user_id == user)
        .order_by(digest_table.c.slot_at.desc())
    )
    async with env.node.database.read() as conn:
        row = (await conn.execute(query)).first()
    return {} if row is None else dict(row._mapping)


async def test_a_refused_digest_is_retried_by_the_delivery_worker(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    async with digest_node(settings, port, retry_schedule=(0.2, 0.2)) as env:
        user = uid()
        address = await prefs(env, user)
        nid = await put_aside(env, user)
        inbox.fail = 1  # the first try gets a 451
        run = await run_digest(env, datetime.now(UTC) + timedelta(days=1, hours=1))
        assert run.sent == 1
        (mail,) = await arrived(inbox, address)
        row = await eventually(lambda: digest_row(env, user), lambda r: r["status"] == "sent")
        assert inbox.refused == 1 and row["attempts"] == 2
        assert mail["Message-ID"] == f"<{row['id']}.digest@x.test>" == row["message_id"]
        assert row["provider"] == "smtp" and row["recipient"] == address
        assert (await digest_sent(env, nid))["status"] == "digest_sent"


async def test_a_digest_failing_for_good_is_a_dead_letter_and_its_items_wait(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    async with digest_node(settings, port, retry_schedule=(0.2, 0.2)) as env:
        user = uid()
        address = await prefs(env, user)
        nid = await put_aside(env, user, title="first")
        inbox.fail = 3  # every try of the retry schedule
        as_of = datetime.now(UTC) + timedelta(days=1, hours=1)
        await run_digest(env, as_of)
        dead = await eventually(
            lambda: digest_row(env, user), lambda r: r["status"] == "failed", timeout=20
        )
        assert dead["attempts"] == 3 and dead["dead_at"] is not None and "451" in dead["error"]
        assert digests(inbox, address) == []
        assert (await status(env, nid))["status"] == "digested"  # put aside still
        # the next day's digest carries it
        run = await run_digest(env, as_of + timedelta(days=1))
        assert run.sent == 1 and run.items == 1
        (mail,) = await arrived(inbox, address)
        assert "first" in str(mail.get_body(("html",)).get_content())  # type: ignore[union-attr]
        assert (await digest_sent(env, nid))["status"] == "digest_sent"


async def listed(env: Env, nid: str) -> router_pb2.Delivery:
    """The email delivery of ``nid`` as gRPC ``ListDeliveries`` shows it."""
    reply = await RouterServiceStub(env.grpc_channel).ListDeliveries(
        router_pb2.ListDeliveriesRequest(notification_id=nid), metadata=env.metadata
    )
    (email,) = [d for d in reply.deliveries if d.channel == "email"]
    return email


async def test_a_carried_item_reads_as_its_digest_stands_and_is_written_once(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    """A put-aside email carried by a digest reads ``digested`` while the digest waits to
    be sent (REST and gRPC), ``digest_sent`` with the digest's send time once it is sent;
    its own row is written once, by the run, and keeps ``digested``."""
    inbox, port = smtp
    async with digest_node(settings, port, retry_schedule=(2.0, 2.0)) as env:
        user = uid()
        address = await prefs(env, user)
        nid = await put_aside(env, user)
        inbox.fail = 1  # the first try is refused: the digest waits for its retry
        await run_digest(env, datetime.now(UTC) + timedelta(days=1, hours=1))
        waiting = await eventually(
            lambda: digest_row(env, user), lambda r: r.get("status") == "retrying"
        )
        shown = await status(env, nid)
        assert (shown["status"], shown["sent_at"]) == ("digested", None)
        assert (await listed(env, nid)).status == "digested"
        stored = await delivery_row(env, nid)
        assert (stored["status"], stored["digest_id"]) == ("digested", waiting["id"])

        await arrived(inbox, address)
        sent = await eventually(lambda: digest_row(env, user), lambda r: r["status"] == "sent")
        shown = await digest_sent(env, nid)
        assert shown["sent_at"] == iso(sent["sent_at"])
        email = await listed(env, nid)
        assert email.status == "digest_sent" and email.id == shown["id"]
        assert email.sent_at.ToDatetime(tzinfo=UTC) == sent["sent_at"]
        stored = await delivery_row(env, nid)
        assert (stored["status"], stored["sent_at"]) == ("digested", None)  # written once
