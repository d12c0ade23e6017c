"""ApnsProvider against a local server speaking APNs's HTTP/2 provider API.

The server (:mod:`tests.support.apns`, started by the test over TLS + HTTP/2 behind a TCP
relay) verifies the provider JWT, the ``apns-*`` headers, the device token and the payload
the way APNs does, and answers with APNs's statuses, ``apns-id`` and ``reason`` bodies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest

from delivery_svc.providers.apns import ApnsProvider, read_settings
from delivery_svc.providers.base import Outcome, PushMessage
from tests.support import apns as fake
from tests.support.apns import ApnsServer
from tests.support.outcomes import permanent, taken, transient
from tests.support.waiting import eventually

DEVICE = "5f" * 32


def message(token: str = DEVICE, **changes: object) -> PushMessage:
    base = PushMessage(
        send_id=str(uuid.uuid4()),
        token=token,
        title="Build finished",
        body="main is green",
        data={"notification_id": "n1", "type": "build"},
        priority="high",
        ttl=3600,
        collapse_key="builds",
        badge=3,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(apns: ApnsServer, *, timeout: float = 5.0, clock: Clock | None = None) -> ApnsProvider:
    settings = read_settings(apns.env())
    assert settings is not None
    return ApnsProvider(settings, timeout=timeout, clock=clock or time.time)


@pytest.fixture
async def provider(apns: ApnsServer) -> AsyncIterator[ApnsProvider]:
    p = make(apns)
    yield p
    await p.close()


async def test_an_alert_is_taken_with_apns_id_over_http2(
    provider: ApnsProvider, apns: ApnsServer
) -> None:
    sent = message()
    before = int(time.time())
    result = taken(await provider.send(sent))
    [pushed] = apns.fake.accepted
    assert result == Outcome.sent("apns", sent.send_id)
    assert pushed.http_version == "2"
    assert pushed.token == DEVICE
    assert pushed.headers["apns-id"] == sent.send_id
    assert pushed.headers["apns-topic"] == fake.TOPIC
    assert pushed.headers["apns-push-type"] == "alert"
    assert pushed.headers["apns-priority"] == "10"
    assert pushed.headers["apns-collapse-id"] == "builds"
    assert before + 3600 <= int(pushed.headers["apns-expiration"]) <= int(time.time()) + 3600
    assert pushed.payload == {
        "aps": {
            "alert": {"title": "Build finished", "body": "main is green"},
            "badge": 3,
            "sound": "default",
        },
        "notification_id": "n1",
        "type": "build",
    }


async def test_normal_priority_is_5_without_sound_and_ttl_0_is_expiration_0(
    provider: ApnsProvider, apns: ApnsServer
) -> None:
    taken(await provider.send(message(priority="normal", ttl=0, collapse_key=None, badge=None)))
    [pushed] = apns.fake.accepted
    assert pushed.headers["apns-priority"] == "5"
    assert pushed.headers["apns-expiration"] == "0"
    assert "apns-collapse-id" not in pushed.headers
    assert pushed.payload["aps"] == {"alert": {"title": "Build finished", "body": "main is green"}}


async def test_without_title_or_body_it_is_a_background_push(
    provider: ApnsProvider, apns: ApnsServer
) -> None:
    taken(await provider.send(message(title="", body="")))
    [pushed] = apns.fake.accepted
    assert pushed.headers["apns-push-type"] == "background"
    assert pushed.headers["apns-priority"] == "5"
    assert pushed.payload["aps"] == {"content-available": 1}
    assert pushed.payload["notification_id"] == "n1"


async def test_a_long_or_non_ascii_collapse_key_is_sent_as_its_64_character_digest(
    provider: ApnsProvider, apns: ApnsServer
) -> None:
    taken(await provider.send(message(collapse_key="g" * 65)))
    taken(await provider.send(message(collapse_key="g" * 65)))
    taken(await provider.send(message(collapse_key="équipe")))
    first, second, third = (p.headers["apns-collapse-id"] for p in apns.fake.accepted)
    assert first == second and len(first) == 64
    assert third != first and len(third) == 64


async def test_a_payload_over_4_kb_is_permanent_and_not_sent(
    provider: ApnsProvider, apns: ApnsServer
) -> None:
    info = permanent(await provider.send(message(body="x" * 4100)), match="PayloadTooLarge")
    assert not info.gone
    assert apns.fake.accepted == [] and apns.fake.refused == []


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        (fake.GONE, "410: Unregistered"),
        (fake.BAD_TOKEN, "400: BadDeviceToken"),
        (fake.OTHER_APP, "400: DeviceTokenNotForTopic"),
    ],
)
async def test_a_gone_token_is_unreachable(provider: ApnsProvider, token: str, detail: str) -> None:
    result = await provider.send(message(token))
    assert result == Outcome.unreachable("apns", detail)
    assert result.gone and not result.ok and not result.retryable


async def test_a_token_that_is_not_hex_is_unreachable_without_a_request(
    provider: ApnsProvider, apns: ApnsServer
) -> None:
    result = await provider.send(message("not/a/token"))
    assert result.gone and not result.retryable
    assert apns.fake.refused == []


@pytest.mark.parametrize(
    ("token", "detail", "retry_after"),
    [
        (fake.THROTTLED, "429: TooManyRequests", None),
        (fake.BROKEN, "500: InternalServerError", None),
        (fake.UNAVAILABLE, "503: ServiceUnavailable", 7.0),
    ],
)
async def test_throttling_and_server_errors_are_transient(
    provider: ApnsProvider, token: str, detail: str, retry_after: float | None
) -> None:
    info = transient(await provider.send(message(token)))
    assert (info.detail, info.retry_after, info.gone) == (detail, retry_after, False)


async def test_a_wrong_topic_is_permanent_with_apns_reason(apns: ApnsServer) -> None:
    settings = read_settings(apns.env(NOTIFY_APNS_TOPIC="com.example.other"))
    assert settings is not None
    provider = ApnsProvider(settings)
    try:
        info = permanent(await provider.send(message()))
    finally:
        await provider.close()
    assert (info.detail, info.gone) == ("400: BadTopic", False)


async def test_a_token_signed_by_another_key_is_permanent(apns: ApnsServer, tmp_path: Path) -> None:
    other = tmp_path / "other.p8"
    fake.write_p8(other)
    settings = read_settings(apns.env(NOTIFY_APNS_KEY_FILE=str(other)))
    assert settings is not None
    provider = ApnsProvider(settings)
    try:
        permanent(await provider.send(message()), match="403: InvalidProviderToken")
    finally:
        await provider.close()


async def test_the_jwt_is_shared_by_sends_and_renewed_at_50_minutes(apns: ApnsServer) -> None:
    clock = Clock(time.time() - 3300)
    provider = make(apns, clock=clock)
    try:
        await asyncio.gather(*(provider.send(message()) for _ in range(3)))
        clock.now += 49 * 60
        taken(await provider.send(message()))
        clock.now += 60
        taken(await provider.send(message()))
    finally:
        await provider.close()
    tokens = [p.jwt for p in apns.fake.accepted]
    assert len(set(tokens[:4])) == 1 and tokens[4] != tokens[0]
    first, renewed = (jwt.decode(t, options={"verify_signature": False}) for t in tokens[3:])
    assert renewed["iat"] - first["iat"] == 50 * 60
    assert first["iss"] == fake.TEAM_ID
    assert jwt.get_unverified_header(tokens[4]) == {"alg": "ES256", "kid": fake.KEY_ID}


async def test_expired_provider_token_is_renewed_and_the_send_retried_once(
    provider: ApnsProvider, apns: ApnsServer
) -> None:
    taken(await provider.send(message()))
    retry = message(fake.EXPIRES_ONCE)
    assert taken(await provider.send(retry)).provider_id == retry.send_id
    assert apns.fake.refused == [(fake.EXPIRES_ONCE, 403, "ExpiredProviderToken")]
    first, retried = apns.fake.accepted
    assert retried.token == fake.EXPIRES_ONCE and retried.jwt != first.jwt
    assert retried.headers["apns-id"] == retry.send_id
    taken(await provider.send(message()))
    assert apns.fake.accepted[-1].jwt == retried.jwt


async def test_expired_again_after_renewal_is_transient_after_one_retry(
    provider: ApnsProvider, apns: ApnsServer
) -> None:
    transient(await provider.send(message(fake.ALWAYS_EXPIRED)), match="ExpiredProviderToken")
    assert [r[2] for r in apns.fake.refused] == ["ExpiredProviderToken"] * 2


async def test_an_unanswered_stream_times_out_as_transient_and_later_sends_work(
    apns: ApnsServer,
) -> None:
    provider = make(apns, timeout=0.5)
    try:
        transient(await provider.send(message(fake.UNANSWERED)), match="no answer")
        assert apns.fake.unanswered == 1
        taken(await provider.send(message()))
        taken(await provider.send(message()))
    finally:
        await provider.close()


async def test_sends_beside_an_unanswered_stream_are_answered(apns: ApnsServer) -> None:
    provider = make(apns, timeout=2.0)
    try:
        hung = asyncio.create_task(provider.send(message(fake.UNANSWERED)))
        await eventually(lambda: apns.fake.unanswered, lambda n: n == 1)
        results = await asyncio.gather(*(provider.send(message()) for _ in range(5)))
        assert all(r.ok for r in results)
        transient(await hung)
    finally:
        await provider.close()
    assert apns.relay.accepted == 1


async def test_a_lost_connection_is_transient_and_the_next_send_reconnects(
    apns: ApnsServer,
) -> None:
    provider = make(apns, timeout=2.0)
    try:
        taken(await provider.send(message()))
        hung = asyncio.create_task(provider.send(message(fake.UNANSWERED)))
        await eventually(lambda: apns.fake.unanswered, lambda n: n == 1)
        assert apns.relay.cut() == 1
        transient(await hung)
        taken(await provider.send(message()))
    finally:
        await provider.close()
    assert apns.relay.accepted == 2


async def test_many_concurrent_sends_share_one_connection(
    provider: ApnsProvider, apns: ApnsServer
) -> None:
    results = await asyncio.gather(*(provider.send(message()) for _ in range(40)))
    assert all(r.ok for r in results)
    assert len({r.provider_id for r in results}) == 40
    assert apns.relay.accepted == 1


async def test_an_unanswered_stream_times_out_while_other_streams_keep_the_connection_busy(
    apns: ApnsServer,
) -> None:
    """httpx's read timeout restarts at every frame of any stream; the send's own deadline
    does not. (At most 800 sends: the server ends a connection after 1000 streams.)"""
    provider = make(apns, timeout=1.0)
    try:
        hung = asyncio.create_task(provider.send(message(fake.UNANSWERED)))
        await eventually(lambda: apns.fake.unanswered, lambda n: n == 1)
        sent = 0
        while not hung.done() and sent < 800:
            taken(await provider.send(message()))
            sent += 1
        transient(await hung, match="no answer within 1 s")
    finally:
        await provider.close()
