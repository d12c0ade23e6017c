"""SMS through Amazon SNS (``Publish`` to a phone number).

Each text is one ``Publish`` with ``PhoneNumber``, ``Message`` and the message attribute
``AWS.SNS.SMS.SMSType`` = ``Transactional`` (routed for delivery, not price). boto3 is
synchronous: as for SES (:mod:`delivery_svc.providers.ses`) one client is created up front
(clients are thread-safe) and each call runs in a worker thread; botocore's own retries
are off, the delivery workers retry with their backoff.

**Opted-out numbers.** SNS accepts a ``Publish`` to a number that replied STOP and then
delivers nothing: the opt-out shows only in its delivery logs. So each send first asks
``CheckIfPhoneNumberIsOptedOut`` (in the same worker thread); an opted-out number is
:meth:`Outcome.unreachable` without publishing, and so ends on the phone suppression list,
after which it is not sent to (nor asked about) again.

**Errors.** ``InvalidParameter`` about the phone number (not E.164, "not valid to publish
to") → unreachable; other ``InvalidParameter`` (message too long, ...) and other 4xx →
permanent; throttling (``Throttled``, ``Throttling``), ``InternalError``, 5xx, an endpoint
that cannot be reached and timeouts → transient; credentials SNS does not accept are
transient too, as for SES: SNS refused us, not the text, and fixing them lets it through.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from delivery_svc.providers.base import Outcome, SmsMessage, SmsProviderSpec
from delivery_svc.providers.twilio import SMS_IN_USE
from delivery_svc.transport.aws import aws_client, call_errors
from notify_core.constants import (
    SNS_SMS_CONNECT_TIMEOUT_SECONDS,
    SNS_SMS_MAX_POOL_CONNECTIONS,
    SNS_SMS_READ_TIMEOUT_SECONDS,
)
from notify_core.errors import ConfigError
from notify_core.settings_decl import TEXT, Setting, SettingsGroup, url

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient

_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
SMS_TYPE = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
_INVALID = frozenset({"InvalidParameter", "InvalidParameterValue", "InvalidParameterException"})
_TRANSIENT = frozenset(
    {
        "Throttled",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "InternalError",
        "InternalErrorException",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "KMSThrottling",
        # Credentials: SNS refused us, not the text; fixing them lets it through.
        "AuthorizationError",
        "InvalidClientTokenId",
        "InvalidSecurity",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "ExpiredToken",
        "AccessDenied",
        "AccessDeniedException",
    }
)


class _OptedOut(Exception):
    """The number replied STOP (raised in the worker thread instead of publishing)."""


def outcome_of_error(provider: str, exc: Exception) -> Outcome:
    """The outcome of a botocore exception raised by ``publish``."""
    from botocore.exceptions import ClientError, ParamValidationError

    if isinstance(exc, ClientError):
        error: Any = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        line = f"{code}: {message}".strip()
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _INVALID and "phone" in message.lower():
            return Outcome.unreachable(provider, line)
        if code in _TRANSIENT or status >= 500 or status == 429:
            return Outcome.transient(provider, line)
        if code in _INVALID or 400 <= status < 500:
            return Outcome.permanent(provider, line)
        return Outcome.transient(provider, line)
    if isinstance(exc, ParamValidationError):
        return Outcome.permanent(provider, f"invalid request: {exc}")
    return Outcome.transient(provider, f"{type(exc).__name__}: {exc}")


class SnsSmsProvider:
    """:class:`~delivery_svc.providers.base.SmsProvider` for Amazon SNS."""

    name = "sns"

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
    ) -> None:
        """Credentials not given come from boto3's usual chain (environment, profile, role)."""
        self._client: SNSClient = aws_client(
            "sns",
            region=region,
            endpoint_url=endpoint_url,
            connect_timeout=SNS_SMS_CONNECT_TIMEOUT_SECONDS,
            read_timeout=SNS_SMS_READ_TIMEOUT_SECONDS,
            max_pool_connections=SNS_SMS_MAX_POOL_CONNECTIONS,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
        )

    async def send(self, message: SmsMessage) -> Outcome:
        try:
            message_id = await asyncio.to_thread(self._publish, message.to, message.body)
        except _OptedOut:
            return Outcome.unreachable(self.name, f"{message.to} has opted out of SMS (STOP)")
        except call_errors() as exc:
            return outcome_of_error(self.name, exc)
        return Outcome.sent(self.name, message_id)

    def _publish(self, number: str, body: str) -> str | None:
        checked = self._client.check_if_phone_number_is_opted_out(phoneNumber=number)
        if checked.get("isOptedOut"):
            raise _OptedOut(number)
        response = self._client.publish(
            PhoneNumber=number,
            Message=body,
            MessageAttributes=SMS_TYPE,  # type: ignore[arg-type]
        )
        return response.get("MessageId")

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


# --- Settings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnsSmsSettings:
    """``NOTIFY_SNS_*``, checked."""

    region: str
    endpoint_url: str | None = None


REGION_SETTING: Setting[str | None] = Setting(
    "NOTIFY_SNS_REGION",
    TEXT,
    None,
    "Amazon SNS region for SMS (credentials from the usual AWS chain); required for `sns`",
)
ENDPOINT_SETTING: Setting[str | None] = Setting(
    "NOTIFY_SNS_ENDPOINT_URL",
    url("http", "https", trim_slash=True),
    None,
    "SNS endpoint URL",
    shown_default="AWS's",
)
SETTINGS = SettingsGroup("delivery_svc/providers/sns_sms.py", (REGION_SETTING, ENDPOINT_SETTING))


def read_settings(env: Mapping[str, str], in_use: bool) -> SnsSmsSettings | None:
    """``NOTIFY_SNS_REGION`` (required when SNS is in use) and ``NOTIFY_SNS_ENDPOINT_URL``;
    None when SNS is not in use and no region is set."""
    region = REGION_SETTING.read(env)
    endpoint_url = ENDPOINT_SETTING.read(env)
    if region is not None and not _REGION_RE.match(region):
        raise ConfigError(f"NOTIFY_SNS_REGION must be an AWS region like eu-west-1, got {region!r}")
    if region is None:
        if in_use:
            raise ConfigError(f"NOTIFY_SNS_REGION is required when {SMS_IN_USE} is sns")
        return None
    return SnsSmsSettings(region, endpoint_url)


def build(settings: SnsSmsSettings | None) -> SnsSmsProvider:
    if settings is None:
        raise ConfigError(f"NOTIFY_SNS_REGION is required when {SMS_IN_USE} is sns")
    return SnsSmsProvider(region=settings.region, endpoint_url=settings.endpoint_url)


PROVIDER = SmsProviderSpec(name="sns", settings=SETTINGS, read_settings=read_settings, build=build)
