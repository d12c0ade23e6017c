"""NOTIFY_SES_SNS_TOPIC_ARNS: the SNS topics /webhooks/ses accepts."""

from __future__ import annotations

import pytest

from delivery_svc.provider_event_routes import ProviderWebhooks
from delivery_svc.providers.ses import PROVIDER as SES
from notify_app.settings import load_settings
from notify_core.errors import ConfigError

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"
CHINA = "arn:aws-cn:sns:cn-north-1:123456789012:ses.events_2"


def test_unset_turns_the_ses_endpoint_off() -> None:
    settings = load_settings({}, env_file=None)
    assert SES.settings_of(settings.email).sns_topic_arns == ()
    assert ProviderWebhooks.from_settings(settings.email).receivers["ses"] is None


def test_comma_separated_arns_are_kept_in_order() -> None:
    env = {"NOTIFY_SES_SNS_TOPIC_ARNS": f" {TOPIC} , {CHINA},"}
    email = load_settings(env, env_file=None).email
    assert SES.settings_of(email).sns_topic_arns == (TOPIC, CHINA)


@pytest.mark.parametrize(
    "bad",
    [
        "ses-events",
        "arn:aws:sqs:eu-west-1:123456789012:ses-events",
        "arn:aws:sns:eu-west-1:1234:ses-events",
        f"{TOPIC}/extra",
    ],
)
def test_a_malformed_arn_fails_naming_the_variable(bad: str) -> None:
    with pytest.raises(ConfigError, match="NOTIFY_SES_SNS_TOPIC_ARNS") as info:
        load_settings({"NOTIFY_SES_SNS_TOPIC_ARNS": f"{TOPIC},{bad}"}, env_file=None)
    assert repr(bad) in info.value.message


def test_the_sendgrid_verifier_comes_from_its_key_setting() -> None:
    plain = ProviderWebhooks.from_settings(load_settings({}, env_file=None).email)
    assert plain.receivers["sendgrid"] is None
    key = (
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHB"
        "cepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
    )
    env = {"NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY": key, "NOTIFY_SES_SNS_TOPIC_ARNS": TOPIC}
    configured = ProviderWebhooks.from_settings(load_settings(env, env_file=None).email)
    assert configured.receivers["sendgrid"] is not None
    assert configured.receivers["ses"] is not None
