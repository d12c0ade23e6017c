"""SesProvider against moto's SES server (a real HTTP server speaking the SESv2 API;
:mod:`tests.support.ses`)."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from delivery_svc.providers.base import EmailMessage
from delivery_svc.providers.ses import SesProvider, translate_error
from tests.support.outcomes import permanent, transient
from tests.support.procs import free_port
from tests.support.ses import CREDENTIALS, REGION, SENDER, stored_messages


@pytest.fixture
async def provider(moto_url: str) -> AsyncIterator[SesProvider]:
    p = SesProvider(region=REGION, endpoint_url=moto_url, **CREDENTIALS)
    yield p
    await p.close()


MESSAGE = EmailMessage(
    to="Alice Müller <alice@example.com>",
    sender=f"Notify <{SENDER}>",
    subject="Ihr Bericht ist fertig",
    html="<p>Fertig.</p>",
    text="Fertig.",
    message_id="<n1.email@notify.example.com>",
    idempotency_key="n1:email",
    headers={
        "List-Unsubscribe": "<https://notify.example.com/u?token=abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
)


async def test_a_raw_email_reaches_ses_with_our_headers(
    provider: SesProvider, moto_url: str
) -> None:
    result = await provider.send(MESSAGE)
    assert result.provider == "ses"
    assert result.provider_id
    stored = stored_messages(moto_url)[result.provider_id]
    assert stored["source"] == SENDER
    assert "alice@example.com" in stored["destinations"]
    msg = email.message_from_string(stored["raw_data"], policy=email.policy.default)
    assert msg["Message-ID"] == "<n1.email@notify.example.com>"
    assert msg["List-Unsubscribe"] == "<https://notify.example.com/u?token=abc>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["To"] == "Alice Müller <alice@example.com>"
    assert msg.get_content_type() == "multipart/alternative"


async def test_each_send_gets_its_own_ses_message_id(provider: SesProvider, moto_url: str) -> None:
    first = await provider.send(MESSAGE)
    second = await provider.send(dataclasses.replace(MESSAGE, to="bob@example.com"))
    assert first.provider_id != second.provider_id
    sent = stored_messages(moto_url)
    assert first.provider_id in sent and second.provider_id in sent


async def test_an_unverified_sender_is_permanent(provider: SesProvider, moto_url: str) -> None:
    before = len(stored_messages(moto_url))
    info = permanent(
        await provider.send(dataclasses.replace(MESSAGE, sender="someone@unverified.example")),
        match="MessageRejected",
    )
    assert info.provider == "ses"
    assert len(stored_messages(moto_url)) == before


async def test_an_unreachable_endpoint_is_transient() -> None:
    provider = SesProvider(
        region=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}", **CREDENTIALS
    )
    try:
        transient(await provider.send(MESSAGE), match="EndpointConnectionError")
    finally:
        await provider.close()


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "SendEmail")


@pytest.mark.parametrize(
    ("code", "status", "permanent"),
    [
        ("MessageRejected", 400, True),
        ("MailFromDomainNotVerifiedException", 400, True),
        ("InvalidParameterValue", 400, True),
        ("NotFoundException", 404, True),
        ("TooManyRequestsException", 429, False),
        ("Throttling", 400, False),
        ("ServiceUnavailable", 503, False),
        ("InternalFailure", 500, False),
        ("SendingPausedException", 400, False),
        ("UnrecognizedClientException", 403, False),
    ],
)
def test_ses_error_codes_map_to_permanent_or_transient(
    code: str, status: int, permanent: bool
) -> None:
    error = translate_error("ses", _client_error(code, status))
    assert error.permanent is permanent
    assert code in error.message
