"""Push and SMS when a process or a provider fails.

* kill -9 of the delivery process of a mesh of ``notify serve`` processes (PostgreSQL,
  RabbitMQ, Redis) while a flood of high-priority pushes is in flight, then started again:
  every accepted notification's push reaches FCM (the local FCM server,
  :mod:`tests.support.fcm`, matched by ``data.notification_id``) and is recorded as sent.
  Only a push the process had sent and not recorded when it died goes out twice: the kill
  comes while FCM holds pushes it took and has not answered, each of which goes out again,
  and the extra copies are at most the push deliveries the process held (at most its
  concurrency);
* FCM answering 503 to every send opens its breaker: the pushes are kept for a retry, not
  failed, and FCM is not asked while the breaker is open;
* Twilio failing opens its breaker, and the texts go out through SNS (moto), the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from delivery_svc.config_push import push_settings
from notify_app.settings import NodeSettings
from notify_core.auth import issue_user_token
from notify_core.db.engine import Database
from tests.support.deliveries import breaker, set_phone, status
from tests.support.fcm import FakeFcm, FcmServer
from tests.support.flood import (
    IN_FLIGHT,
    Flood,
    being_sent,
    delivery_statuses,
    fault_env,
    outbox_left,
)
from tests.support.ids import uid
from tests.support.mesh import Mesh, mesh_env, running_mesh
from tests.support.nodes import JWT_SECRET, Env, running
from tests.support.push import register, sends_of
from tests.support.ses import CREDENTIALS, REGION
from tests.support.sns_sms import published_sms
from tests.support.twilio import FakeTwilio, twilio_env
from tests.support.waiting import eventually

USERS = 200
"""Users of the push flood, each with one FCM device."""
SENDS = 400
ANSWER_DELAY = 0.05
"""Seconds FCM holds each push it took before answering: a batch stays in flight a while,
where the kill catches it."""


# --- kill -9 of the delivery process mid-flood ---------------------------------------------


@pytest.fixture
async def fcm_mesh(
    fcm: FcmServer,
    postgres_url: str,
    redis_url: str,
    amqp_url: str,
    namespace: str,
    tmp_path: Path,
) -> AsyncIterator[Mesh]:
    """A mesh that pushes through the local FCM server, at most :data:`IN_FLIGHT` high
    priority pushes at a time."""
    fcm.fake.answer_delay = ANSWER_DELAY
    env = {
        **mesh_env(postgres_url, redis_url, amqp_url, namespace),
        **fault_env(),
        "NOTIFY_FCM_CREDENTIALS": str(fcm.credentials),
        "NOTIFY_FCM_ENDPOINT": fcm.url,
        "SSL_CERT_FILE": fcm.ca_file,
        "NOTIFY_PUSH_CONCURRENCY": f"high={IN_FLIGHT},normal={IN_FLIGHT},low={IN_FLIGHT}",
    }
    with contextlib.ExitStack() as stack:
        # Started and stopped in a thread: the FCM server answers on this event loop.
        mesh = await asyncio.to_thread(stack.enter_context, running_mesh(env, tmp_path))
        try:
            yield mesh
        finally:
            await asyncio.to_thread(stack.close)


async def register_devices(client: httpx.AsyncClient, users: list[str]) -> None:
    """One FCM device for each user, registered by the user."""
    slots = asyncio.Semaphore(16)

    async def one(user: str) -> None:
        headers = {"authorization": f"Bearer {issue_user_token(JWT_SECRET, user)}"}
        async with slots:
            r = await client.post(
                "/devices", json={"platform": "fcm", "token": f"android-{user}"}, headers=headers
            )
        assert r.status_code in (200, 201), r.text

    await asyncio.gather(*(one(u) for u in users))


async def check_every_push_arrived(
    flood: Flood,
    fcm: FakeFcm,
    database_url: str,
    namespace: str,
    *,
    duplicates: tuple[int, int],
    timeout: float = 90.0,
) -> str:
    """Wait until every accepted notification's push delivery is recorded as sent and the
    outbox is empty; then check that FCM took each of them, and that the extra copies it
    took are within ``duplicates`` (the fewest, the most). Answer a summary for the
    test's output."""
    ids = list(flood.accepted)
    assert len(ids) >= flood.target
    db = Database(database_url, pool_size=1)
    try:
        await eventually(
            lambda: delivery_statuses(db, ids, "push"),
            lambda statuses: set(statuses) == {"sent"} and statuses["sent"] == len(ids),
            timeout,
        )
        await eventually(lambda: outbox_left(db, namespace), lambda n: n == 0, timeout)
    finally:
        await db.close()
    counts = Counter(a.message["data"]["notification_id"] for a in fcm.accepted)
    missing = set(ids) - set(counts)
    assert not missing, f"{len(missing)} accepted notifications never reached FCM"
    extra = sum(n - 1 for n in counts.values())
    fewest, most = duplicates
    summary = (
        f"{len(ids)} accepted, {sum(flood.refused.values())} refused {dict(flood.refused)}; "
        f"{len(counts)} pushes, {extra} extra copies (from {fewest} to {most} expected)"
    )
    assert fewest <= extra <= most, summary
    return summary


async def test_kill9_of_the_delivery_process_mid_push_flood_loses_no_push(
    fcm_mesh: Mesh, fcm: FcmServer, postgres_url: str
) -> None:
    async with httpx.AsyncClient(base_url=fcm_mesh.edge.base_url, timeout=10) as client:
        flood = Flood.of(USERS, SENDS, priority="high")
        await register_devices(client, flood.users)
        sending = asyncio.create_task(flood.run(client))
        await eventually(
            lambda: asyncio.sleep(0, len(flood.accepted)), lambda n: n >= SENDS // 3, 60
        )
        # Mid-batch: FCM took these pushes and holds their answers, so the delivery process
        # cannot have recorded them (no await between the look and the kill).
        held = await eventually(lambda: fcm.fake.answering, lambda n: n > 0, 60)
        fcm_mesh.procs["delivery"].kill9()
        in_flight = await being_sent(postgres_url, flood.users, "push")
        assert held <= in_flight <= IN_FLIGHT
        await asyncio.to_thread(fcm_mesh.restart, "delivery")
        await sending
        summary = await check_every_push_arrived(
            flood,
            fcm.fake,
            postgres_url,
            fcm_mesh.env["NOTIFY_NAMESPACE"],
            duplicates=(held, in_flight),
        )
    print(f"\n[kill -9 delivery] {held} pushes held by FCM, {in_flight} in flight; {summary}")


# --- Breakers -----------------------------------------------------------------------------


async def push_status(env: Env, nid: str, wanted: str) -> dict[str, Any]:
    return await eventually(
        lambda: status(env, nid, "push"), lambda d: d.get("status") in (wanted, "failed")
    )


async def test_fcm_failing_every_send_opens_its_breaker_and_the_pushes_wait_for_a_retry(
    settings: NodeSettings, fcm: FcmServer
) -> None:
    fcm.fake.unavailable = True
    push = push_settings(
        {"NOTIFY_FCM_CREDENTIALS": str(fcm.credentials), "NOTIFY_FCM_ENDPOINT": fcm.url}
    )
    changes = {"push": push, "breaker_threshold": 2, "breaker_reset": 3600.0}
    async with running(settings, **changes) as env:
        users = [uid() for _ in range(3)]
        for user in users:
            await register(env, user, "fcm", f"android-{uid()}")
        # two 503s in a row open the breaker
        for nid in [await env.send(u, priority="high") for u in users[:2]]:
            refused = await push_status(env, nid, "retrying")
            assert refused["status"] == "retrying", refused
            assert "503 UNAVAILABLE" in refused["last_error"]
        fcm_breaker = await breaker(env, "fcm")
        assert fcm_breaker.state == "open" and fcm_breaker.opened >= 1
        asked = fcm.fake.sends
        # while it is open, a push waits for its retry without FCM being asked
        late = await env.send(users[2], priority="high")
        waiting = await push_status(env, late, "retrying")
        assert waiting["status"] == "retrying", waiting
        assert "circuit is open" in waiting["last_error"]
        assert fcm.fake.sends == asked
        (send,) = await sends_of(env, late)
        assert send["status"] == "retrying" and "circuit is open" in send["error_message"]


def uk_mobile() -> str:
    """A number of the UK's drama range, never one moto's SNS takes for opted out (those
    end in 99)."""
    return f"+4477009{secrets.randbelow(10_000):04d}1"


async def test_twilio_failing_opens_its_breaker_and_the_texts_go_out_through_sns(
    settings: NodeSettings,
    twilio: FakeTwilio,
    moto_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    twilio.down = True
    variables = {
        **twilio_env(twilio),
        "NOTIFY_SMS_FALLBACK": "sns",
        "NOTIFY_SNS_REGION": REGION,
        "NOTIFY_SNS_ENDPOINT_URL": moto_url,
    }
    changes = {
        "push": push_settings(variables),
        "retry_schedule": (0.3,) * 6,
        "breaker_threshold": 2,
        "breaker_reset": 3600.0,
    }
    async with running(settings, **changes) as env:
        texts: dict[str, tuple[str, str]] = {}
        for _ in range(3):
            user, phone, code = uid(), uk_mobile(), uid("code")
            await set_phone(env, user, phone)
            nid = await env.send(user, channels=["sms"], title="Code", message=code)
            texts[nid] = (phone, f"Code: {code}")
        for nid in texts:
            done = await eventually(
                lambda nid=nid: status(env, nid, "sms"),
                lambda d: d.get("status") in ("sent", "failed"),
            )
            assert done["status"] == "sent" and done["provider"] == "sns", done
        published = {(m["phone_number"], m["message"]) for m in published_sms(moto_url).values()}
        assert set(texts.values()) <= published
        assert len(twilio.forms) >= 2 and not twilio.messages  # asked, and took none
        twilio_breaker = await breaker(env, "twilio")
        assert twilio_breaker.state == "open" and twilio_breaker.opened >= 1
