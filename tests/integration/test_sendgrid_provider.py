"""SendGridProvider against a local HTTP server speaking SendGrid's v3 Mail Send API.

The server (Starlette on uvicorn, started by the test) checks the bearer key and the JSON
shape the way SendGrid documents them and answers with SendGrid's status codes, headers
and ``{"errors": [{"message", "field", "help"}]}`` bodies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from delivery_svc.providers.base import EmailMessage
from delivery_svc.providers.sendgrid import SendGridProvider
from notify_core.errors import PermanentDeliveryError, TransientDeliveryError

API_KEY = "SG.test-key.0123456789"


def _errors(status: int, *errors: tuple[str, str | None], **headers: str) -> JSONResponse:
    body = {"errors": [{"message": m, "field": f, "help": None} for m, f in errors]}
    return JSONResponse(body, status_code=status, headers=headers)


def _shape_errors(body: Any) -> list[tuple[str, str | None]]:
    """The validation SendGrid applies to the parts of the request we send."""
    out: list[tuple[str, str | None]] = []
    if not isinstance(body, dict):
        return [("Bad Request", None)]
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        out.append(("You must have at least one personalization.", "personalizations"))
    else:
        for i, p in enumerate(personalizations):
            to = p.get("to") if isinstance(p, dict) else None
            if not isinstance(to, list) or not to or not all("@" in t.get("email", "") for t in to):
                out.append(
                    (
                        "The to array is required for all personalization objects.",
                        f"personalizations.{i}.to",
                    )
                )
    sender = body.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        out.append(("The from object must be provided for every email send.", "from.email"))
    if not isinstance(body.get("subject"), str) or not body["subject"]:
        out.append(("The subject is required.", "subject"))
    content = body.get("content")
    if not isinstance(content, list) or not content:
        out.append(
            (
                "Unless a valid template_id is provided, the content parameter is required.",
                "content",
            )
        )
    else:
        types = [c.get("type") for c in content]
        if "text/plain" in types and types[0] != "text/plain":
            out.append(("If present, text/plain must be first, followed by text/html.", "content"))
        for i, c in enumerate(content):
            if not isinstance(c.get("value"), str) or not c["value"]:
                out.append(
                    (
                        "The content value must be a string at least one character in length.",
                        f"content.{i}.value",
                    )
                )
    for key in ("custom_args", "headers"):
        values = body.get(key, {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            out.append((f"{key} values must be strings.", key))
    return out


class FakeSendGrid:
    def __init__(self) -> None:
        self.accepted: list[tuple[str, dict[str, Any]]] = []

    async def mail_send(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _errors(
                401, ("The provided authorization grant is invalid, expired, or revoked", None)
            )
        if request.headers.get("content-type") != "application/json":
            return _errors(400, ("Content-Type should be application/json.", None))
        try:
            body = await request.json()
        except ValueError:
            return _errors(400, ("Bad Request", None))
        problems = _shape_errors(body)
        if problems:
            return _errors(400, *problems)
        to = body["personalizations"][0]["to"][0]["email"]
        if to.startswith("ratelimited@"):
            return _errors(429, ("too many requests", None), **{"Retry-After": "7"})
        if to.startswith("broken@"):
            return _errors(500, ("internal server error", None))
        if to.startswith("huge@"):
            return _errors(413, ("Payload Too Large", None))
        if to.startswith("slow@"):
            await asyncio.sleep(1.0)
        message_id = secrets.token_urlsafe(16)[:22]
        self.accepted.append((message_id, body))
        return Response(status_code=202, headers={"X-Message-Id": message_id})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def sendgrid() -> AsyncIterator[tuple[FakeSendGrid, str]]:
    fake = FakeSendGrid()
    app = Starlette(routes=[Route("/v3/mail/send", fake.mail_send, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # it failed to start: raise why
        await asyncio.sleep(0.01)
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    sock.close()


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
    assert result.provider_message_id == message_id
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
    assert len({r.provider_message_id for r in results}) == 50
    assert len(fake.accepted) == 50


async def test_a_wrong_key_is_permanent_with_sendgrids_message(
    sendgrid: tuple[FakeSendGrid, str],
) -> None:
    provider = SendGridProvider(api_key="SG.wrong", base_url=sendgrid[1])
    try:
        with pytest.raises(PermanentDeliveryError) as info:
            await provider.send(MESSAGE)
    finally:
        await provider.close()
    assert info.value.message.startswith("sendgrid: 401: The provided authorization grant")


async def test_a_400_carries_each_error_and_its_field(provider: SendGridProvider) -> None:
    with pytest.raises(PermanentDeliveryError) as info:
        await provider.send(dataclasses.replace(MESSAGE, subject=""))
    assert "400: The subject is required. (field subject)" in info.value.message


async def test_a_413_is_permanent(provider: SendGridProvider) -> None:
    with pytest.raises(PermanentDeliveryError, match="413: Payload Too Large"):
        await provider.send(dataclasses.replace(MESSAGE, to="huge@example.com"))


async def test_a_429_is_transient_with_retry_after(provider: SendGridProvider) -> None:
    with pytest.raises(TransientDeliveryError) as info:
        await provider.send(dataclasses.replace(MESSAGE, to="ratelimited@example.com"))
    assert info.value.retry_after == 7.0
    assert "429: too many requests" in info.value.message


async def test_a_500_is_transient(provider: SendGridProvider) -> None:
    with pytest.raises(TransientDeliveryError, match="500: internal server error") as info:
        await provider.send(dataclasses.replace(MESSAGE, to="broken@example.com"))
    assert info.value.retry_after is None


async def test_a_timeout_is_transient(sendgrid: tuple[FakeSendGrid, str]) -> None:
    provider = SendGridProvider(api_key=API_KEY, base_url=sendgrid[1], timeout=0.3)
    try:
        with pytest.raises(TransientDeliveryError, match="timed out"):
            await provider.send(dataclasses.replace(MESSAGE, to="slow@example.com"))
    finally:
        await provider.close()


async def test_nothing_listening_is_transient() -> None:
    provider = SendGridProvider(api_key=API_KEY, base_url=f"http://127.0.0.1:{_free_port()}")
    try:
        with pytest.raises(TransientDeliveryError, match="ConnectError"):
            await provider.send(MESSAGE)
    finally:
        await provider.close()


async def test_a_header_injection_never_leaves_the_process(
    provider: SendGridProvider, sendgrid: tuple[FakeSendGrid, str]
) -> None:
    bad = dataclasses.replace(MESSAGE, headers={"X-Tag": "a\r\nBcc: victim@example.com"})
    with pytest.raises(PermanentDeliveryError, match="line break"):
        await provider.send(bad)
    assert sendgrid[0].accepted == []
