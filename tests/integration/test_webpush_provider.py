"""The web push provider against a push service over TLS (:mod:`tests.support.webpush`).

The service verifies the VAPID JWT and decrypts every payload with the subscription's
private key, as a browser vendor's would; the answers it gives per subscription exercise
the outcome table and the SSRF guard refuses endpoints on private addresses unless the
webhook allowances say otherwise.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from delivery_svc.providers.base import Outcome, PushMessage
from delivery_svc.providers.webpush import (
    PROVIDER,
    WebPushProvider,
    WebPushSettings,
    read_settings,
    topic_for,
    vapid_public_key,
)
from tests.support.h2server import trusting
from tests.support.outcomes import permanent, taken, transient
from tests.support.webpush import MAX_BODY, SUBJECT, PushService, PushSubscription, vapid_env


def settings_of(tmp_path: Path, name: str = "vapid.pem", **extra: str) -> WebPushSettings:
    """Settings allowing the push service's host (``localhost``), as an operator would."""
    extra.setdefault("NOTIFY_WEBHOOK_ALLOWED_HOSTS", "localhost")
    settings = read_settings(vapid_env(tmp_path, name, **extra))
    assert settings is not None
    return settings


@asynccontextmanager
async def provider_of(
    settings: WebPushSettings, service: PushService, **options: Any
) -> AsyncIterator[WebPushProvider]:
    options.setdefault("ssl_context", ssl.create_default_context(cafile=service.ca_file))
    provider = WebPushProvider(settings, **options)
    try:
        yield provider
    finally:
        await provider.close()


def message(sub: PushSubscription | str, **fields: Any) -> PushMessage:
    values: dict[str, Any] = {
        "send_id": str(uuid.uuid4()),
        "token": sub if isinstance(sub, str) else sub.token,
        "title": "Ada commented",
        "body": 'héllo "world" — 👋',
        "data": {"notification_id": "n-1", "type": "comment.created"},
        "priority": "high",
        "ttl": 3600,
    }
    return PushMessage(**{**values, **fields})


# --- the request ------------------------------------------------------------------------


async def test_the_payload_decrypts_to_what_was_sent(
    push_service: PushService, tmp_path: Path
) -> None:
    settings = settings_of(tmp_path)
    sub = push_service.subscribe(server_key=vapid_public_key(settings))
    msg = message(sub)
    async with provider_of(settings, push_service) as provider:
        outcome = taken(await provider.send(msg))
    assert outcome.provider == "webpush"
    assert outcome.provider_id is not None
    assert outcome.provider_id.startswith(f"{push_service.origin}/message/")
    [got] = push_service.pushed
    assert got.subscription == sub.id
    assert got.message == {"title": msg.title, "body": msg.body, "data": dict(msg.data)}
    assert got.headers["content-encoding"] == "aes128gcm"
    assert got.headers["content-type"] == "application/octet-stream"
    assert (got.ttl, got.urgency, got.topic) == (3600, "high", None)
    assert got.size <= MAX_BODY


async def test_the_vapid_jwt_names_the_origin_the_subject_and_a_near_expiry(
    push_service: PushService, tmp_path: Path
) -> None:
    settings = settings_of(tmp_path)
    before = time.time()
    async with provider_of(settings, push_service) as provider:
        taken(await provider.send(message(push_service.subscribe())))
    [got] = push_service.pushed
    assert got.vapid_key == vapid_public_key(settings)
    assert got.claims["aud"] == push_service.origin
    assert got.claims["sub"] == SUBJECT
    assert before + 11 * 3600 <= got.claims["exp"] <= before + 24 * 3600
    token = got.headers["authorization"].split("t=", 1)[1].split(",", 1)[0]
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


async def test_one_jwt_per_origin_is_reused_until_near_its_expiry(
    push_service: PushService, tmp_path: Path
) -> None:
    now = [time.time()]
    settings = settings_of(tmp_path)
    async with provider_of(settings, push_service, clock=lambda: now[0]) as provider:
        for _ in range(2):
            taken(await provider.send(message(push_service.subscribe())))
        now[0] += 11.5 * 3600  # under an hour left: signed again
        taken(await provider.send(message(push_service.subscribe())))
        assert provider.authorization("https://push.example") != provider.authorization(
            push_service.origin
        )
    first, second, third = (p.headers["authorization"] for p in push_service.pushed)
    assert first == second
    assert third != first


@pytest.mark.parametrize(
    ("priority", "urgency"), [("high", "high"), ("normal", "normal"), ("low", "low")]
)
async def test_urgency_follows_the_priority_and_ttl_is_passed_on(
    push_service: PushService, tmp_path: Path, priority: str, urgency: str
) -> None:
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        taken(await provider.send(message(push_service.subscribe(), priority=priority, ttl=0)))
    [got] = push_service.pushed
    assert (got.urgency, got.ttl, got.headers["ttl"]) == (urgency, 0, "0")


async def test_the_collapse_key_becomes_a_topic_the_push_service_accepts(
    push_service: PushService, tmp_path: Path
) -> None:
    keys = ["comments-42", "comment:42/thread é", "x" * 40]
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        for key in keys:
            taken(await provider.send(message(push_service.subscribe(), collapse_key=key)))
    topics = [p.topic for p in push_service.pushed]
    assert topics[0] == "comments-42"
    assert topics[1] == topic_for(keys[1]) and topics[2] == topic_for(keys[2])
    assert len(set(topics)) == 3
    assert all(t is not None and len(t) <= 32 for t in topics)


async def test_a_long_body_is_cut_to_fit_one_record(
    push_service: PushService, tmp_path: Path
) -> None:
    body = 'Ünïcödé and "quotes"\n' * 500
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        taken(await provider.send(message(push_service.subscribe(), body=body)))
    [got] = push_service.pushed
    assert got.size <= MAX_BODY
    assert got.message["body"].endswith("…")
    assert body.startswith(got.message["body"][:-1])
    assert got.message["title"] == "Ada commented"


# --- the answers ------------------------------------------------------------------------


async def test_a_push_taken_without_a_location_has_no_provider_id(
    push_service: PushService, tmp_path: Path
) -> None:
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        outcome = taken(await provider.send(message(push_service.subscribe("accepted"))))
    assert outcome.provider_id is None
    assert len(push_service.pushed) == 1


@pytest.mark.parametrize("answer", ["gone", "missing"])
async def test_an_expired_subscription_is_gone(
    push_service: PushService, tmp_path: Path, answer: str
) -> None:
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        outcome = await provider.send(message(push_service.subscribe(answer)))
    permanent(outcome, match=r"webpush: https://localhost:\d+ answered (404|410)")
    assert outcome.gone and outcome.provider == "webpush"
    assert "expired or was withdrawn" in outcome.detail


@pytest.mark.parametrize(
    ("answer", "retryable", "retry_after", "match"),
    [
        ("too-big", False, None, "answered 413: the payload is too large"),
        ("busy", True, 30.0, "answered 429: too many requests"),
        ("broken", True, None, "answered 500: internal error"),
        ("bad", False, None, "answered 400: malformed push message"),
    ],
)
async def test_every_answer_maps_to_its_outcome(
    push_service: PushService,
    tmp_path: Path,
    answer: str,
    retryable: bool,
    retry_after: float | None,
    match: str,
) -> None:
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        outcome = await provider.send(message(push_service.subscribe(answer)))
    (transient if retryable else permanent)(outcome, match=match)
    assert (outcome.gone, outcome.retry_after, outcome.provider) == (False, retry_after, "webpush")


async def test_a_subscription_made_for_another_key_is_refused_with_the_reason(
    push_service: PushService, tmp_path: Path
) -> None:
    other = vapid_public_key(settings_of(tmp_path, "other.pem"))
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        outcome = await provider.send(message(push_service.subscribe(server_key=other)))
    permanent(outcome, match="answered 403: the VAPID key is not the one")
    assert not outcome.gone


async def test_a_push_service_that_does_not_answer_in_time_is_retried(
    push_service: PushService, tmp_path: Path
) -> None:
    settings = replace(settings_of(tmp_path), timeout=0.5)
    async with provider_of(settings, push_service) as provider:
        outcome = await provider.send(message(push_service.subscribe("slow")))
    transient(outcome, match="did not answer within 0.5s|timed out")


async def test_a_closed_port_is_retried(push_service: PushService, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sub = push_service.subscribe()
    token = sub.token.replace(push_service.origin, f"https://localhost:{port}")
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        transient(await provider.send(message(token)), match="could not reach")


async def test_a_malformed_token_is_refused_for_good(
    push_service: PushService, tmp_path: Path
) -> None:
    sub = push_service.subscribe()
    bad_key = json.loads(sub.token)
    bad_key["keys"]["p256dh"] = "AAAA"
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        permanent(await provider.send(message("not json")), match="not a subscription")
        permanent(await provider.send(message(json.dumps(bad_key))), match="keys are not usable")
    assert push_service.attempts == []


async def test_the_ca_named_by_ssl_cert_file_is_trusted(
    push_service: PushService, tmp_path: Path
) -> None:
    settings = settings_of(tmp_path)
    with trusting(push_service.ca_file):
        provider = PROVIDER.build(settings)
    try:
        assert (provider.name, provider.platform) == ("webpush", "webpush")
        taken(await provider.send(message(push_service.subscribe())))
    finally:
        await provider.close()


async def test_the_push_service_checks_the_jwt_audience(
    push_service: PushService, tmp_path: Path
) -> None:
    """The server is strict: a JWT signed for another origin is refused."""
    sub = push_service.subscribe()
    async with provider_of(settings_of(tmp_path), push_service) as provider:
        elsewhere = provider.authorization("https://push.elsewhere.example")
    context = ssl.create_default_context(cafile=push_service.ca_file)
    async with httpx.AsyncClient(verify=context) as client:
        answer = await client.post(
            sub.endpoint,
            content=b"\0" * 128,
            headers={"authorization": elsewhere, "ttl": "60", "content-encoding": "aes128gcm"},
        )
    assert answer.status_code == 401
    assert "audience" in answer.text.lower()
    assert push_service.pushed == []


# --- the SSRF guard ---------------------------------------------------------------------


async def test_an_endpoint_on_a_private_address_is_refused_unless_allowed(
    push_service: PushService, tmp_path: Path
) -> None:
    guarded = settings_of(tmp_path, NOTIFY_WEBHOOK_ALLOWED_HOSTS="")
    sub = push_service.subscribe()
    async with provider_of(guarded, push_service) as provider:
        outcome = await provider.send(message(sub))
        metadata = sub.token.replace(push_service.origin, "https://169.254.169.254")
        cloud = await provider.send(message(metadata))
    permanent(outcome, match="refused .*localhost.* loopback .*NOTIFY_WEBHOOK_ALLOW_PRIVATE")
    permanent(cloud, match="cloud metadata")
    assert (outcome.provider, outcome.gone) == ("webpush", False)
    assert push_service.attempts == []

    private = settings_of(
        tmp_path, NOTIFY_WEBHOOK_ALLOWED_HOSTS="", NOTIFY_WEBHOOK_ALLOW_PRIVATE="true"
    )
    async with provider_of(private, push_service) as provider:
        taken(await provider.send(message(sub)))
    assert [p.subscription for p in push_service.pushed] == [sub.id]


async def test_plain_http_endpoints_are_refused_even_when_webhooks_allow_http(
    push_service: PushService, tmp_path: Path
) -> None:
    settings = settings_of(tmp_path, NOTIFY_WEBHOOK_ALLOW_HTTP="true")
    token = push_service.subscribe().token.replace("https://", "http://")
    async with provider_of(settings, push_service) as provider:
        outcome: Outcome = await provider.send(message(token))
    permanent(outcome, match="endpoint must be an https URL")
    assert push_service.attempts == []
