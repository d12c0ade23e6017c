"""FcmProvider against a local server speaking FCM's HTTP v1 API and Google's token
endpoint over TLS and HTTP/2.

The server (:mod:`tests.support.fcm`, started by the test) verifies the JWT assertion
with the service account's public key, checks the bearer token and the message JSON the
way FCM does, and answers with Google's error bodies for tokens with special prefixes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from delivery_svc.providers.base import Outcome, PushMessage
from delivery_svc.providers.fcm import PROVIDER, FcmProvider, read_settings
from delivery_svc.transport.google_oauth import load_service_account
from tests.support.fcm import (
    CLIENT_EMAIL,
    PROJECT_ID,
    QUOTA_RETRY_AFTER,
    SCOPE,
    UNAVAILABLE_RETRY_AFTER,
    FcmServer,
)
from tests.support.outcomes import permanent, taken, transient
from tests.support.procs import free_port

MESSAGE = PushMessage(
    send_id="6f1c1f7e-2a3b-4c5d-8e9f-0a1b2c3d4e5f",
    token="device-token-1",
    title="Your report is ready",
    body="Open it in the app.",
    data={"notification_id": "n1", "type": "report.ready"},
    priority="high",
    ttl=3600,
    collapse_key="reports",
)


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def provider_for(fcm: FcmServer, credentials: Path | None = None, **kw: object) -> FcmProvider:
    account = load_service_account(str(credentials or fcm.credentials))
    return FcmProvider(account, endpoint=fcm.url, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def provider(fcm: FcmServer) -> AsyncIterator[FcmProvider]:
    p = provider_for(fcm)
    yield p
    await p.close()


def gone(outcome: Outcome, match: str) -> Outcome:
    assert outcome.gone and not outcome.ok and not outcome.retryable, outcome
    assert match in outcome.message, outcome.message
    return outcome


# --- Sending ------------------------------------------------------------------------------


async def test_a_sent_message_answers_fcms_message_name(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    outcome = taken(await provider.send(MESSAGE))
    [accepted] = fcm.fake.accepted
    assert outcome.provider == "fcm"
    assert outcome.provider_id == accepted.name
    assert outcome.provider_id.startswith(f"projects/{PROJECT_ID}/messages/")
    assert not outcome.gone and outcome.retry_after is None


async def test_the_message_json_carries_everything_fcm_needs(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    taken(await provider.send(MESSAGE))
    [accepted] = fcm.fake.accepted
    assert accepted.message == {
        "token": "device-token-1",
        "notification": {"title": "Your report is ready", "body": "Open it in the app."},
        "data": {
            "notification_id": "n1",
            "type": "report.ready",
            "notify_send_id": MESSAGE.send_id,
        },
        "android": {"priority": "high", "ttl": "3600s", "collapse_key": "reports"},
        "webpush": {"headers": {"TTL": "3600", "Urgency": "high", "Topic": "reports"}},
    }


@pytest.mark.parametrize(
    ("priority", "android", "urgency"),
    [("high", "high", "high"), ("normal", "normal", "normal"), ("low", "normal", "low")],
)
async def test_priority_sets_the_android_priority_and_web_push_urgency(
    provider: FcmProvider, fcm: FcmServer, priority: str, android: str, urgency: str
) -> None:
    taken(await provider.send(dataclasses.replace(MESSAGE, priority=priority)))
    [accepted] = fcm.fake.accepted
    assert accepted.message["android"]["priority"] == android
    assert accepted.message["webpush"]["headers"]["Urgency"] == urgency


async def test_no_collapse_key_and_a_zero_ttl(provider: FcmProvider, fcm: FcmServer) -> None:
    taken(await provider.send(dataclasses.replace(MESSAGE, collapse_key=None, ttl=0)))
    [accepted] = fcm.fake.accepted
    assert accepted.message["android"] == {"priority": "high", "ttl": "0s"}
    assert accepted.message["webpush"]["headers"] == {"TTL": "0", "Urgency": "high"}


async def test_a_collapse_key_web_push_cannot_take_is_left_out_of_its_topic(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    key = "group:billing/invoices-for-the-whole-month"
    taken(await provider.send(dataclasses.replace(MESSAGE, collapse_key=key)))
    [accepted] = fcm.fake.accepted
    assert accepted.message["android"]["collapse_key"] == key
    assert "Topic" not in accepted.message["webpush"]["headers"]


async def test_concurrent_sends_share_one_http2_connection_and_one_token(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    messages = [dataclasses.replace(MESSAGE, token=f"device-{i}") for i in range(50)]
    outcomes = await asyncio.gather(*(provider.send(m) for m in messages))
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
    assert len({o.provider_id for o in outcomes}) == 50
    assert {a.http_version for a in fcm.fake.accepted} == {"2"}
    assert len({a.client for a in fcm.fake.accepted}) == 1
    assert fcm.fake.token_requests == 1


# --- The access token ---------------------------------------------------------------------


async def test_the_assertion_is_signed_by_the_service_account_with_googles_claims(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    taken(await provider.send(MESSAGE))
    [claims] = fcm.fake.assertions
    assert claims["iss"] == CLIENT_EMAIL
    assert claims["scope"] == SCOPE
    assert claims["aud"] == fcm.fake.token_uri
    assert 0 < claims["exp"] - claims["iat"] <= 3600
    assert claims["header"]["alg"] == "RS256"
    assert claims["header"]["kid"] == fcm.fake.key_id


async def test_one_token_serves_many_sends(provider: FcmProvider, fcm: FcmServer) -> None:
    for i in range(5):
        taken(await provider.send(dataclasses.replace(MESSAGE, token=f"device-{i}")))
    assert len(fcm.fake.assertions) == 1


async def test_the_token_is_renewed_a_minute_before_it_expires(fcm: FcmServer) -> None:
    fcm.fake.expires_in = 600
    clock = Clock()
    provider = provider_for(fcm, clock=clock)
    try:
        taken(await provider.send(MESSAGE))
        clock.now += 539
        taken(await provider.send(MESSAGE))
        assert len(fcm.fake.assertions) == 1
        clock.now += 2
        taken(await provider.send(MESSAGE))
        assert len(fcm.fake.assertions) == 2
    finally:
        await provider.close()


async def test_a_refused_token_is_renewed_and_the_send_tried_once_more(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    taken(await provider.send(MESSAGE))
    fcm.fake.revoke()
    taken(await provider.send(MESSAGE))
    assert len(fcm.fake.assertions) == 2
    assert fcm.fake.sends == 3
    assert len(fcm.fake.accepted) == 2


async def test_concurrent_refusals_renew_the_token_once(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    taken(await provider.send(MESSAGE))
    fcm.fake.revoke()
    outcomes = await asyncio.gather(*(provider.send(MESSAGE) for _ in range(10)))
    assert all(o.ok for o in outcomes)
    assert len(fcm.fake.assertions) == 2


async def test_a_second_401_is_permanent_without_a_third_try(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    fcm.fake.refuse_tokens = True
    permanent(await provider.send(MESSAGE), match="401 UNAUTHENTICATED: Request had invalid")
    assert fcm.fake.sends == 2
    assert len(fcm.fake.assertions) == 2


async def test_a_key_google_does_not_know_is_permanent(fcm: FcmServer, tmp_path: Path) -> None:
    from tests.support.fcm import new_key, write_service_account

    other = write_service_account(tmp_path, new_key(), token_uri=fcm.fake.token_uri)
    provider = provider_for(fcm, other)
    try:
        permanent(
            await provider.send(MESSAGE),
            match="refused the service account .*invalid_grant: Invalid JWT Signature",
        )
    finally:
        await provider.close()
    assert fcm.fake.sends == 0


async def test_a_token_endpoint_outage_is_transient(provider: FcmProvider, fcm: FcmServer) -> None:
    fcm.fake.token_answer = (503, {"error": "internal_failure"})
    transient(await provider.send(MESSAGE), match="token endpoint answered 503 internal_failure")
    fcm.fake.token_answer = None
    taken(await provider.send(MESSAGE))


async def test_concurrent_sends_share_one_failed_token_request(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    fcm.fake.token_answer = (400, {"error": "invalid_grant", "error_description": "Invalid JWT"})
    outcomes = await asyncio.gather(*(provider.send(MESSAGE) for _ in range(10)))
    for outcome in outcomes:
        permanent(outcome, match="invalid_grant: Invalid JWT\\); check NOTIFY_FCM_CREDENTIALS")
    assert fcm.fake.token_requests == 1
    assert fcm.fake.sends == 0


async def test_a_message_that_is_not_json_is_permanent_and_never_sent(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    bad = dataclasses.replace(MESSAGE, data={"at": object()})  # type: ignore[dict-item]
    permanent(await provider.send(bad), match="cannot be sent as JSON")
    assert fcm.fake.sends == 0


# --- Refusals -----------------------------------------------------------------------------


async def test_an_unregistered_token_is_gone(provider: FcmProvider) -> None:
    outcome = await provider.send(dataclasses.replace(MESSAGE, token="unregistered-1"))
    gone(outcome, "404 UNREGISTERED: Requested entity was not found.")
    assert outcome.retry_after is None


@pytest.mark.parametrize("token", ["invalid-1", "malformed-1"])
async def test_an_invalid_registration_token_is_gone(provider: FcmProvider, token: str) -> None:
    gone(await provider.send(dataclasses.replace(MESSAGE, token=token)), "400 INVALID_ARGUMENT")


async def test_another_invalid_argument_is_permanent_and_keeps_the_device(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    bad = dataclasses.replace(MESSAGE, data={"count": 3})  # type: ignore[dict-item]
    outcome = permanent(await provider.send(bad), match="message.data\\[0\\].value")
    assert not outcome.gone
    assert fcm.fake.accepted == []


async def test_quota_exceeded_is_transient_with_retry_after_seconds(provider: FcmProvider) -> None:
    outcome = transient(
        await provider.send(dataclasses.replace(MESSAGE, token="quota-1")),
        match="429 QUOTA_EXCEEDED: Quota exceeded",
    )
    assert outcome.retry_after == QUOTA_RETRY_AFTER
    assert not outcome.gone


async def test_unavailable_is_transient_with_retry_after_from_an_http_date(
    provider: FcmProvider,
) -> None:
    outcome = transient(
        await provider.send(dataclasses.replace(MESSAGE, token="unavailable-1")),
        match="503 UNAVAILABLE",
    )
    assert outcome.retry_after is not None
    assert UNAVAILABLE_RETRY_AFTER - 60 < outcome.retry_after <= UNAVAILABLE_RETRY_AFTER


async def test_internal_is_transient(provider: FcmProvider) -> None:
    outcome = transient(
        await provider.send(dataclasses.replace(MESSAGE, token="internal-1")),
        match="500 INTERNAL: Internal error encountered.",
    )
    assert outcome.retry_after is None


async def test_third_party_auth_error_is_permanent_and_says_what_to_fix(
    provider: FcmProvider, fcm: FcmServer
) -> None:
    outcome = permanent(
        await provider.send(dataclasses.replace(MESSAGE, token="thirdpartyauth-1")),
        match="401 THIRD_PARTY_AUTH_ERROR: .*APNs key or certificate.*Firebase console",
    )
    assert not outcome.gone
    assert len(fcm.fake.assertions) == 1  # not taken for a refused access token


async def test_sender_id_mismatch_is_permanent_and_says_what_to_fix(provider: FcmProvider) -> None:
    outcome = permanent(
        await provider.send(dataclasses.replace(MESSAGE, token="senderid-1")),
        match=f"403 SENDER_ID_MISMATCH: SenderId mismatch; .*another Firebase project than "
        f"{PROJECT_ID}.*NOTIFY_FCM_CREDENTIALS",
    )
    assert not outcome.gone


async def test_an_unknown_project_is_permanent_and_keeps_the_device(
    fcm: FcmServer, tmp_path: Path
) -> None:
    provider = provider_for(fcm, fcm.service_account(tmp_path, project_id="elsewhere"))
    try:
        outcome = permanent(
            await provider.send(MESSAGE), match="404 NOT_FOUND: .*check that project elsewhere"
        )
    finally:
        await provider.close()
    assert not outcome.gone


async def test_a_timeout_is_transient(fcm: FcmServer) -> None:
    provider = provider_for(fcm, timeout=0.5)
    try:
        taken(await provider.send(MESSAGE))  # the token is fetched within the timeout
        transient(
            await provider.send(dataclasses.replace(MESSAGE, token="slow-1")), match="timed out"
        )
        fcm.fake.released.set()
        taken(await provider.send(MESSAGE))  # the connection still serves
    finally:
        await provider.close()


async def test_nothing_listening_is_transient(fcm: FcmServer) -> None:
    account = load_service_account(str(fcm.credentials))
    provider = FcmProvider(account, endpoint=f"https://127.0.0.1:{free_port()}")
    try:
        taken_or_refused = await provider.send(MESSAGE)
        transient(taken_or_refused, match="ConnectError")
    finally:
        await provider.close()


# --- The declaration ----------------------------------------------------------------------


async def test_the_declared_provider_is_built_from_its_settings(fcm: FcmServer) -> None:
    env = {"NOTIFY_FCM_CREDENTIALS": str(fcm.credentials), "NOTIFY_FCM_ENDPOINT": fcm.url}
    assert (PROVIDER.name, PROVIDER.platform) == ("fcm", "fcm")
    build: Callable[[object], FcmProvider] = PROVIDER.build  # type: ignore[assignment]
    provider = build(PROVIDER.read_settings(env))
    try:
        assert (provider.name, provider.platform) == ("fcm", "fcm")
        taken(await provider.send(MESSAGE))
    finally:
        await provider.close()
    assert read_settings({}) is None
