"""SendGridProvider against a local HTTP server speaking SendGrid's v3 Mail Send API.

The server (:mod:`tests.support.sendgrid`, started by the test) checks the bearer key and
the JSON shape the way SendGrid documents them and answers with SendGrid's status codes,
headers and ``{"errors": [{"message", "field", "help"}]}`` bodies.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from delivery_svc.providers.base import EmailMessage
from delivery_svc.providers.sendgrid import SendGridProvider
from tests.support.outcomes import permanent, transient
from tests.support.procs import free_port
from tests.support.sendgrid import API_KEY, FakeSendGrid


@pytest.fixture
async def provider(sendgrid: tuple[FakeSendGrid, str]) -> AsyncIterator[SendGridProvider]:
    p = SendGridProvider(api_key=API_KEY, base_url=sendgrid[1], timeout=1.0)
    yield p
    await p.close()


MESSAGE = EmailMessage(
    to="Alice <alice@example.com>",
    sender="Notify <no-reply@notify.example.com>",
    subject="Your report is ready",
    html="<p>Ready.</p>",
    text="Ready.",
    message_id="<n1.email@notify.example.com>",
    idempotency_key="n1:email",
    headers={
        "List-Unsubscribe": "<https://notify.example.com/u?token=abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
    reply_to="support@notify.example.com",
)


async def test_an_accepted_message_returns_sendgrids_message_id(
    provider: SendGridProvider, sendgrid: tuple[FakeSendGrid, str]
) -> None:
    fake, _ = sendgrid
    result = await provider.send(MESSAGE)
    [(message_id, body)] = fake.accepted
    assert result.provider == "sendgrid"
    assert result.provider_id == message_id
    assert body["personalizations"] == [{"to": [{"email": "alice@example.com", "name": "Alice"}]}]
    assert body["from"] == {"email": "no-reply@notify.example.com", "name": "Notify"}
    assert body["reply_to"] == {"email": "support@notify.example.com"}
    assert body["subject"] == "Your report is ready"
    assert body["content"] == [
        {"type": "text/plain", "value": "Ready."},
        {"type": "text/html", "value": "<p>Ready.</p>"},
    ]
    assert body["headers"] == dict(MESSAGE.headers)
    assert body["custom_args"] == {
        "notify_message_id": "<n1.email@notify.example.com>",
        "notify_idempotency_key": "n1:email",
    }


async def test_concurrent_sends_all_arrive(
    provider: SendGridProvider, sendgrid: tuple[FakeSendGrid, str]
) -> None:
    fake, _ = sendgrid
    results = await asyncio.gather(
        *(provider.send(dataclasses.replace(MESSAGE, to=f"u{i}@example.com")) for i in range(50))
    )
    assert len({r.provider_id for r in results}) == 50
    assert len(fake.accepted) == 50


async def test_a_wrong_key_is_permanent_with_sendgrids_message(
    sendgrid: tuple[FakeSendGrid, str],
) -> None:
    provider = SendGridProvider(api_key="SG.wrong", base_url=sendgrid[1])
    try:
        info = permanent(await provider.send(MESSAGE))
    finally:
        await provider.close()
    assert info.message.startswith("sendgrid: 401: The provided authorization grant")


async def test_a_400_carries_each_error_and_its_field(provider: SendGridProvider) -> None:
    info = permanent(await provider.send(dataclasses.replace(MESSAGE, subject="")))
    assert "400: The subject is required. (field subject)" in info.message


async def test_a_413_is_permanent(provider: SendGridProvider) -> None:
    permanent(
        await provider.send(dataclasses.replace(MESSAGE, to="huge@example.com")),
        match="413: Payload Too Large",
    )


async def test_a_429_is_transient_with_retry_after(provider: SendGridProvider) -> None:
    info = transient(
        await provider.send(dataclasses.replace(MESSAGE, to="ratelimited@example.com"))
    )
    assert info.retry_after == 7.0
    assert "429: too many requests" in info.message


async def test_a_500_is_transient(provider: SendGridProvider) -> None:
    info = transient(
        await provider.send(dataclasses.replace(MESSAGE, to="broken@example.com")),
        match="500: internal server error",
    )
    assert info.retry_after is None


async def test_a_timeout_is_transient(sendgrid: tuple[FakeSendGrid, str]) -> None:
    provider = SendGridProvider(api_key=API_KEY, base_url=sendgrid[1], timeout=0.3)
    try:
        transient(
            await provider.send(dataclasses.replace(MESSAGE, to="slow@example.com")),
            match="timed out",
        )
    finally:
        await provider.close()


async def test_nothing_listening_is_transient() -> None:
    provider = SendGridProvider(api_key=API_KEY, base_url=f"http://127.0.0.1:{free_port()}")
    try:
        transient(await provider.send(MESSAGE), match="ConnectError")
    finally:
        await provider.close()


async def test_a_header_injection_never_leaves_the_process(
    provider: SendGridProvider, sendgrid: tuple[FakeSendGrid, str]
) -> None:
    bad = dataclasses.replace(MESSAGE, headers={"X-Tag": "a\r\nBcc: victim@example.com"})
    permanent(await provider.send(bad), match="line break")
    assert sendgrid[0].accepted == []
