"""Email through Amazon SES (API v2, ``SendEmail`` with raw content).

The message goes as the MIME of :mod:`delivery_svc.transport.email_mime`, so our own
headers (Message-ID, List-Unsubscribe, ...) reach the recipient as they are.
boto3 is synchronous: one client is created up front (clients are thread-safe) and each
call runs in a worker thread. botocore's own retries are off; the delivery workers retry,
with their backoff.

Errors: SES refusing the message or its sender (MessageRejected, MailFromDomainNotVerified,
InvalidParameterValue, other 4xx) is permanent; throttling, SES being unavailable, an
endpoint that cannot be reached, and credentials SES does not accept (the provider refused
*us*, not the message) are transient.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from delivery_svc.providers.base import EmailMessage, SendResult
from delivery_svc.transport.email_mime import envelope_address, mime_bytes
from notify_core.constants import (
    SES_CONNECT_TIMEOUT_SECONDS,
    SES_MAX_POOL_CONNECTIONS,
    SES_READ_TIMEOUT_SECONDS,
)
from notify_core.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

if TYPE_CHECKING:
    from mypy_boto3_sesv2.client import SESV2Client

_PERMANENT_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerified",
        "MailFromDomainNotVerifiedException",
        "InvalidParameterValue",
        "BadRequestException",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServiceError",
        "RequestTimeout",
        "RequestTimeoutException",
        "SendingPausedException",
        "AccountSuspendedException",
        # Credentials: SES refused us, not the message; fixing them lets it through.
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AccessDenied",
        "AccessDeniedException",
    }
)


def translate_error(provider: str, exc: Exception) -> DeliveryError:
    """The delivery error for a botocore exception raised by ``send_email``."""
    if isinstance(exc, ClientError):
        error: Any = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        text = f"{code}: {error.get('Message', '')}".strip()
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _PERMANENT_CODES:
            return PermanentDeliveryError(provider, text)
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientDeliveryError(provider, text)
        if 400 <= status < 500:
            return PermanentDeliveryError(provider, text)
        return TransientDeliveryError(provider, text)
    if isinstance(exc, ParamValidationError):
        return PermanentDeliveryError(provider, f"invalid request: {exc}")
    return TransientDeliveryError(provider, f"{type(exc).__name__}: {exc}")


class SesProvider:
    """:class:`~delivery_svc.providers.base.EmailProvider` for Amazon SES (v2 API)."""

    name = "ses"

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        configuration_set: str | None = None,
    ) -> None:
        """Credentials not given come from boto3's usual chain (environment, profile, role).
        ``configuration_set`` names the SES configuration set whose event destinations
        publish this mail's events (to SNS, for :mod:`.events`)."""
        config = Config(
            region_name=region,
            connect_timeout=SES_CONNECT_TIMEOUT_SECONDS,
            read_timeout=SES_READ_TIMEOUT_SECONDS,
            retries={"total_max_attempts": 1},
            max_pool_connections=SES_MAX_POOL_CONNECTIONS,
        )
        session = boto3.session.Session(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            region_name=region,
        )
        self._client: SESV2Client = session.client(
            "sesv2", endpoint_url=endpoint_url, config=config
        )
        self._configuration_set = configuration_set

    async def send(self, message: EmailMessage) -> SendResult:
        raw = mime_bytes(message, provider=self.name)
        sender = envelope_address(self.name, "sender", message.sender)
        to = envelope_address(self.name, "to", message.to)
        try:
            response = await asyncio.to_thread(self._send, sender, to, raw)
        except (ClientError, BotoCoreError) as exc:
            raise translate_error(self.name, exc) from None
        return SendResult(provider=self.name, provider_message_id=response.get("MessageId"))

    def _send(self, sender: str, to: str, raw: bytes) -> Any:
        if self._configuration_set:
            return self._client.send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": [to]},
                Content={"Raw": {"Data": raw}},
                ConfigurationSetName=self._configuration_set,
            )
        return self._client.send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [to]},
            Content={"Raw": {"Data": raw}},
        )

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
