"""SnsSmsProvider against moto's SNS server (a real HTTP server speaking the SNS API;
:mod:`tests.support.ses`, :mod:`tests.support.sns_sms`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from delivery_svc.providers.base import SmsMessage
from delivery_svc.providers.sns_sms import SnsSmsProvider, outcome_of_error
from tests.support.outcomes import permanent, taken, transient
from tests.support.procs import free_port
from tests.support.ses import CREDENTIALS, REGION
from tests.support.sns_sms import OPTED_OUT, published_sms


@pytest.fixture
async def provider(moto_url: str) -> AsyncIterator[SnsSmsProvider]:
    p = SnsSmsProvider(region=REGION, endpoint_url=moto_url, **CREDENTIALS)
    yield p
    await p.close()


def message(to: str, body: str = "Deploy: finished") -> SmsMessage:
    return SmsMessage(send_id=str(uuid.uuid4()), to=to, body=body)


async def test_a_text_is_published_to_the_number(provider: SnsSmsProvider, moto_url: str) -> None:
    result = taken(await provider.send(message("+447700900123", "Grüße ✓")))
    assert result.provider == "sns"
    assert result.provider_id
    stored = published_sms(moto_url)[result.provider_id]
    assert stored["phone_number"] == "+447700900123"
    assert stored["message"] == "Grüße ✓"


async def test_an_opted_out_number_is_unreachable_and_not_published(
    provider: SnsSmsProvider, moto_url: str
) -> None:
    before = len(published_sms(moto_url))
    result = permanent(await provider.send(message(OPTED_OUT)), match="opted out")
    assert result.gone
    assert len(published_sms(moto_url)) == before


@pytest.mark.parametrize("number", ["+0123", "not a number"])
async def test_a_number_sns_refuses_is_unreachable(provider: SnsSmsProvider, number: str) -> None:
    result = permanent(await provider.send(message(number)), match="InvalidParameter")
    assert result.gone


async def test_a_text_sns_refuses_is_permanent_not_gone(provider: SnsSmsProvider) -> None:
    result = permanent(
        await provider.send(message("+447700900123", "x" * 1601)), match="1600 bytes"
    )
    assert not result.gone


async def test_an_unreachable_endpoint_is_transient() -> None:
    provider = SnsSmsProvider(
        region=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}", **CREDENTIALS
    )
    try:
        transient(await provider.send(message("+447700900123")))
    finally:
        await provider.close()


def client_error(code: str, message: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message, "Type": "Sender"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "Publish")


@pytest.mark.parametrize(
    ("code", "text", "status", "retryable", "gone"),
    [
        (
            "InvalidParameter",
            "Invalid parameter: PhoneNumber Reason: +15555 is not valid to publish to",
            400,
            False,
            True,
        ),
        ("InvalidParameter", "Invalid parameter: Message too long", 400, False, False),
        ("Throttled", "Rate exceeded", 400, True, False),
        ("ThrottlingException", "Rate exceeded", 400, True, False),
        ("InternalError", "Internal failure", 500, True, False),
        ("KMSThrottling", "KMS throttled", 400, True, False),
        ("AuthorizationError", "not authorized to perform SNS:Publish", 403, True, False),
        ("InvalidClientTokenId", "The security token is invalid", 403, True, False),
        ("EndpointDisabled", "Endpoint is disabled", 400, False, False),
        ("SomethingNew", "server side", 503, True, False),
    ],
)
def test_sns_errors_map_to_outcomes(
    code: str, text: str, status: int, retryable: bool, gone: bool
) -> None:
    outcome = outcome_of_error("sns", client_error(code, text, status))
    assert (outcome.ok, outcome.retryable, outcome.gone) == (False, retryable, gone)
    assert outcome.detail == f"{code}: {text}"


def test_a_connection_error_is_transient() -> None:
    outcome = outcome_of_error("sns", EndpointConnectionError(endpoint_url="http://sns"))
    assert outcome.retryable and not outcome.gone
