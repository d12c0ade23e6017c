"""The SMS providers' settings, Twilio's request form and its status callbacks (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from delivery_svc.providers import sns_sms, twilio
from delivery_svc.providers.base import SmsMessage
from delivery_svc.providers.sns_sms import SnsSmsSettings
from delivery_svc.providers.twilio import (
    TwilioSettings,
    message_form,
    parse_status_callback,
    status_callback_url,
)
from notify_core.errors import ConfigError, InvalidArgument

SID = "AC" + "a" * 32
SERVICE = "MG" + "b" * 32
MESSAGE_SID = "SM" + "c" * 32
TWILIO_ENV = {
    "NOTIFY_TWILIO_ACCOUNT_SID": SID,
    "NOTIFY_TWILIO_AUTH_TOKEN": "secret",
    "NOTIFY_TWILIO_FROM": "+14155550100",
}
AT = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def test_twilio_settings() -> None:
    assert twilio.read_settings(TWILIO_ENV, True) == TwilioSettings(
        SID, "secret", "+14155550100", "https://api.twilio.com"
    )
    env = {**TWILIO_ENV, "NOTIFY_TWILIO_FROM": SERVICE, "NOTIFY_TWILIO_BASE_URL": "http://t:1/"}
    assert twilio.read_settings(env, False) == TwilioSettings(SID, "secret", SERVICE, "http://t:1")
    assert twilio.read_settings({}, False) is None
    assert "secret" not in repr(twilio.read_settings(TWILIO_ENV, True))


@pytest.mark.parametrize("name", sorted(TWILIO_ENV))
def test_twilio_settings_are_required_in_use(name: str) -> None:
    env = {k: v for k, v in TWILIO_ENV.items() if k != name}
    with pytest.raises(ConfigError, match=f"{name} is required when NOTIFY_SMS_PROVIDER"):
        twilio.read_settings(env, True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFY_TWILIO_ACCOUNT_SID", "AC123"),
        ("NOTIFY_TWILIO_ACCOUNT_SID", "SK" + "a" * 32),
        ("NOTIFY_TWILIO_FROM", "Notify"),
        ("NOTIFY_TWILIO_FROM", "4155550100"),
        ("NOTIFY_TWILIO_FROM", "MG123"),
        ("NOTIFY_TWILIO_BASE_URL", "api.twilio.com"),
    ],
)
def test_bad_twilio_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        twilio.read_settings({**TWILIO_ENV, name: value}, True)


def test_twilio_builds_only_with_settings() -> None:
    with pytest.raises(ConfigError, match="NOTIFY_TWILIO_ACCOUNT_SID"):
        twilio.build(None)


def test_sns_settings() -> None:
    env = {"NOTIFY_SNS_REGION": "eu-west-1", "NOTIFY_SNS_ENDPOINT_URL": "http://127.0.0.1:5000/"}
    assert sns_sms.read_settings(env, True) == SnsSmsSettings("eu-west-1", "http://127.0.0.1:5000")
    assert sns_sms.read_settings({}, False) is None
    with pytest.raises(ConfigError, match="NOTIFY_SNS_REGION is required"):
        sns_sms.read_settings({}, True)
    with pytest.raises(ConfigError, match="NOTIFY_SNS_REGION must be"):
        sns_sms.read_settings({"NOTIFY_SNS_REGION": "Ireland"}, False)
    with pytest.raises(ConfigError, match="NOTIFY_SNS_ENDPOINT_URL"):
        sns_sms.read_settings(
            {"NOTIFY_SNS_REGION": "eu-west-1", "NOTIFY_SNS_ENDPOINT_URL": "x"}, True
        )


def test_the_form_names_the_sender_by_its_kind() -> None:
    sms = SmsMessage("s1", "+14155550123", "hi", status_callback="https://n.example/w")
    assert message_form(sms, "+14155550100") == {
        "To": "+14155550123",
        "From": "+14155550100",
        "Body": "hi",
        "StatusCallback": "https://n.example/w",
    }
    plain = SmsMessage("s1", "+14155550123", "hi")
    assert message_form(plain, SERVICE) == {
        "To": "+14155550123",
        "MessagingServiceSid": SERVICE,
        "Body": "hi",
    }


def test_the_callback_url_is_under_the_public_url() -> None:
    assert status_callback_url("https://n.example/") == "https://n.example/webhooks/twilio"


def _form(status: str, code: str | None = None, to: str = "+14155550123") -> dict[str, str]:
    form = {"MessageSid": MESSAGE_SID, "MessageStatus": status, "To": to}
    if code is not None:
        form["ErrorCode"] = code
    return form


@pytest.mark.parametrize(
    ("form", "kind", "suppress", "detail"),
    [
        (_form("delivered"), "delivered", None, "delivered"),
        (_form("sent"), "sent", None, "sent"),
        (_form("undelivered", "30005"), "failed", "unreachable", "undelivered 30005"),
        (_form("undelivered", "30006"), "failed", "unreachable", "undelivered 30006"),
        (_form("failed", "21610"), "failed", "opted_out", "failed 21610"),
        (_form("failed", "21211"), "failed", "unreachable", "failed 21211"),
        (_form("undelivered", "30003"), "failed", None, "undelivered 30003"),
        (_form("failed"), "failed", None, "failed"),
        (_form("failed", "30005", to="whatsapp:+1415"), "failed", None, "failed 30005"),
        # a gone code on a status that is not a failure suppresses nothing
        (_form("delivered", "30005"), "delivered", None, "delivered 30005"),
        (
            {"SmsSid": MESSAGE_SID, "SmsStatus": "delivered", "To": "+1"},
            "delivered",
            None,
            "delivered",
        ),
    ],
)
def test_status_callbacks(
    form: dict[str, str], kind: str, suppress: str | None, detail: str
) -> None:
    event = parse_status_callback(form, at=AT)
    assert event is not None
    assert (event.kind, event.suppress, event.detail) == (kind, suppress, detail)
    assert (event.provider, event.provider_message_id, event.at) == ("twilio", MESSAGE_SID, AT)


@pytest.mark.parametrize(
    "status", ["queued", "accepted", "scheduled", "sending", "read", "canceled"]
)
def test_statuses_that_change_nothing(status: str) -> None:
    assert parse_status_callback(_form(status)) is None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"MessageStatus": "sent"}, "MessageSid"),
        ({"MessageSid": "SM1", "MessageStatus": "sent"}, "MessageSid"),
        ({"MessageSid": MESSAGE_SID}, "MessageStatus"),
        (_form("failed", "3000x"), "ErrorCode"),
        (_form("failed", "\u00b2"), "ErrorCode"),
    ],
)
def test_malformed_callbacks_name_the_field(form: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        parse_status_callback(form)
