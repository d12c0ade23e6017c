"""Provider event webhooks end to end, on both backends.

Mail goes out through real servers (aiosmtpd, a local SendGrid speaking its v3 API, moto's
SES); the events come back signed the way the providers sign them: SendGrid with an ECDSA
P-256 key whose public half the node is configured with, SNS with an RSA key under a
certificate the test issues. The node fetches that certificate, and GETs subscribe URLs,
through the injectable :class:`SnsHttp` (SNS hosts are on the internet); everything else
is the node's own code.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from delivery_svc.config_email import EmailSettings
from delivery_svc.provider_events import apply_events
from delivery_svc.providers.base import ProviderEvent
from delivery_svc.providers.sendgrid import SendGridSettings
from delivery_svc.providers.ses import SesSettings
from delivery_svc.providers.smtp import SmtpSettings
from delivery_svc.transport.sns import get_subscribe_url
from notify_app.settings import NodeSettings
from notify_core.db.schema import (
    notification_deliveries,
    notifications,
    provider_event_receipts,
)
from notify_core.errors import Unauthenticated
from tests.support.deliveries import delivery_row, set_email
from tests.support.ids import uid
from tests.support.nodes import Env, running, serving
from tests.support.sendgrid import API_KEY as SENDGRID_KEY
from tests.support.sendgrid import FakeSendGrid
from tests.support.ses import CREDENTIALS, REGION, SENDER, stored_messages
from tests.support.smtp import Inbox
from tests.support.sns import CERT_URL, SnsSide, sns_sign
from tests.support.waiting import eventually

# --- SendGrid signing -------------------------------------------------------------------

SG_KEY = ec.generate_private_key(ec.SECP256R1())
SG_PUBLIC = base64.b64encode(
    SG_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def sg_headers(
    body: bytes, key: ec.EllipticCurvePrivateKey = SG_KEY, age: int = 0
) -> dict[str, str]:
    """Headers of a post signed ``age`` seconds ago."""
    timestamp = str(int(time.time()) - age)
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "content-type": "application/json",
    }


def sg_event(event: str, address: str, sg_id: str | None, at: int, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "email": address,
        "timestamp": at,
        "event": event,
        "sg_event_id": uuid.uuid4().hex,
        **extra,
    }
    if sg_id is not None:
        item["sg_message_id"] = f"{sg_id}.filterdrecv-5645d9c87f-78xgx-1-5F-3.0"
    return item


async def post_sendgrid(env: Env, items: list[dict[str, Any]], **sign: Any) -> httpx.Response:
    body = json.dumps(items).encode()
    return await env.http.post("/webhooks/sendgrid", content=body, headers=sg_headers(body, **sign))


# --- SNS signing ------------------------------------------------------------------------

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sns_notification(event: dict[str, Any], topic: str = TOPIC) -> dict[str, Any]:
    return sns_sign(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": json.dumps(event),
            "Timestamp": _now_iso(),
        }
    )


def ses_event(kind: str, ses_id: str, address: str, our_id: str, at: str) -> dict[str, Any]:
    mail = {
        "timestamp": at,
        "source": SENDER,
        "messageId": ses_id,
        "destination": [address],
        "commonHeaders": {"messageId": our_id},
    }
    bodies: dict[str, dict[str, Any]] = {
        "Delivery": {
            "delivery": {"timestamp": at, "recipients": [address], "smtpResponse": "250 ok"}
        },
        "Bounce": {
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "timestamp": at,
                "bouncedRecipients": [
                    {"emailAddress": address, "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
                ],
            }
        },
        "Complaint": {
            "complaint": {
                "timestamp": at,
                "complaintFeedbackType": "abuse",
                "complainedRecipients": [{"emailAddress": address}],
            }
        },
    }
    return {"eventType": kind, "mail": mail, **bodies[kind]}


async def post_ses(env: Env, message: dict[str, Any]) -> httpx.Response:
    headers = {"content-type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "x"}
    return await env.http.post("/webhooks/ses", content=json.dumps(message), headers=headers)


# --- the node's state -------------------------------------------------------------------


async def sent_row(env: Env, user: str, **fields: Any) -> dict[str, Any]:
    """Send to ``user``; the email delivery row once it settled (sent or failed)."""
    nid = await env.send(user, **fields)
    return dict(
        await eventually(
            lambda: delivery_row(env, nid), lambda r: r["status"] in ("sent", "failed")
        )
    )


async def set_row(env: Env, delivery_id: str, **values: Any) -> None:
    """Test setup: what a send through another provider would have recorded."""
    assert env.node.database is not None
    async with env.node.database.write() as conn:
        await conn.execute(
            notification_deliveries.update()
            .where(notification_deliveries.c.id == delivery_id)
            .values(**values)
        )


async def suppressions(env: Env) -> dict[str, dict[str, Any]]:
    r = await env.http.get("/email-suppressions", params={"limit": 1000}, headers=env.producer)
    assert r.status_code == 200, r.text
    return {s["address"]: s for s in r.json()["suppressions"]}


def email_settings(
    provider: str = "smtp",
    smtp: SmtpSettings | None = None,
    sendgrid: SendGridSettings | None = None,
    ses: SesSettings | None = None,
) -> EmailSettings:
    """Email from SENDER, each provider's settings as given (SMTP without STARTTLS)."""
    return EmailSettings(
        provider=provider,
        sender=f"Notify <{SENDER}>",
        providers={
            "smtp": smtp or SmtpSettings(starttls="never"),
            "sendgrid": sendgrid or SendGridSettings(),
            "ses": ses or SesSettings(),
        },
    )


def counts(matched: int, duplicates: int, unknown: int, suppressed: int) -> dict[str, int]:
    return {
        "matched": matched,
        "duplicates": duplicates,
        "unknown": unknown,
        "suppressed": suppressed,
    }


# --- SendGrid ---------------------------------------------------------------------------


async def test_sendgrid_events_move_statuses_count_engagement_and_suppress_bounces(
    settings: NodeSettings,
    sendgrid: tuple[FakeSendGrid, str],
) -> None:
    fake, url = sendgrid
    mail = email_settings(
        provider="sendgrid",
        sendgrid=SendGridSettings(api_key=SENDGRID_KEY, base_url=url, webhook_public_key=SG_PUBLIC),
    )
    async with running(settings, email=mail) as env:
        reader, bouncer = uid(), uid()
        reader_address = await set_email(env, reader)
        bouncer_address = await set_email(env, bouncer)
        read = await sent_row(env, reader)
        bounced = await sent_row(env, bouncer)
        assert read["status"] == bounced["status"] == "sent"
        ids = {body["personalizations"][0]["to"][0]["email"]: mid for mid, body in fake.accepted}
        assert read["provider"] == "sendgrid"
        assert read["provider_message_id"] == ids[reader_address]
        assert bounced["provider_message_id"] == ids[bouncer_address]

        t = int(time.time())
        our_id = f"<{read['notification_id']}.email@notify.example.com>"
        batch = [
            sg_event("processed", reader_address, ids[reader_address], t),
            sg_event("delivered", reader_address, ids[reader_address], t, response="250 OK"),
            sg_event("open", reader_address, ids[reader_address], t + 5),
            # no sg_message_id: found through our Message-ID from custom_args
            sg_event("open", reader_address, None, t + 6, notify_message_id=our_id),
            sg_event("click", reader_address, ids[reader_address], t + 9, url="https://x.test/r"),
            sg_event(
                "bounce",
                bouncer_address.upper(),
                ids[bouncer_address],
                t + 1,
                type="bounce",
                status="5.1.1",
                reason="550 5.1.1 The email account that you tried to reach does not exist",
            ),
            sg_event("delivered", "nobody@example.com", "NotOneOfOurs", t),
        ]
        r = await post_sendgrid(env, batch)
        assert r.status_code == 200, r.text
        assert r.json() == counts(5, 0, 1, 1)

        row = await delivery_row(env, read["notification_id"])
        assert row["status"] == "clicked"
        assert row["opens"] == 2 and row["clicks"] == 1
        assert row["delivered_at"] == dt.datetime.fromtimestamp(t, dt.UTC)
        assert row["opened_at"] == dt.datetime.fromtimestamp(t + 5, dt.UTC)
        assert row["clicked_at"] == dt.datetime.fromtimestamp(t + 9, dt.UTC)
        assert env.node.database is not None
        async with env.node.database.read() as conn:
            clicked = (
                await conn.execute(
                    sa.select(notifications.c.clicked).where(
                        notifications.c.id == read["notification_id"]
                    )
                )
            ).scalar_one()
        assert clicked is True
        gone = await delivery_row(env, bounced["notification_id"])
        assert gone["status"] == "bounced"
        assert "5.1.1" in gone["error_message"] and "does not exist" in gone["error_message"]
        listed = await suppressions(env)
        assert listed[bouncer_address]["reason"] == "bounce"
        assert listed[bouncer_address]["provider"] == "sendgrid"
        assert reader_address not in listed

        # SendGrid posts the batch again: nothing counts twice
        again = await env.http.post(
            "/webhooks/sendgrid",
            content=json.dumps(batch).encode(),
            headers=sg_headers(json.dumps(batch).encode()),
        )
        assert again.json() == counts(0, 5, 1, 0)
        row = await delivery_row(env, read["notification_id"])
        assert (row["opens"], row["clicks"], row["status"]) == (2, 1, "clicked")

        # a late "delivered" never takes a clicked delivery back
        late = [sg_event("delivered", reader_address, ids[reader_address], t + 20)]
        assert (await post_sendgrid(env, late)).json() == counts(1, 0, 0, 0)
        assert (await delivery_row(env, read["notification_id"]))["status"] == "clicked"

        # the bounced address gets nothing more
        before = len(fake.accepted)
        refused = await sent_row(env, bouncer)
        assert refused["status"] == "failed"
        assert "suppressed" in refused["error_message"]
        assert len(fake.accepted) == before


async def test_sendgrid_posts_that_are_not_signed_by_the_key_change_nothing(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    _, port = smtp
    async with running(settings) as env:
        r = await env.http.post("/webhooks/sendgrid", content=b"[]", headers=sg_headers(b"[]"))
        assert r.status_code == 503
        assert "NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY" in r.json()["error"]["message"]

    mail = email_settings(
        smtp=SmtpSettings(host="127.0.0.1", port=port, starttls="never"),
        sendgrid=SendGridSettings(webhook_public_key=SG_PUBLIC),
    )
    async with running(settings, email=mail) as env:
        user = uid()
        address = await set_email(env, user)
        row = await sent_row(env, user)
        await set_row(env, row["id"], provider="sendgrid", provider_message_id="sg-abc")
        bounce = [sg_event("bounce", address, "sg-abc", int(time.time()), type="bounce")]
        body = json.dumps(bounce).encode()

        other = ec.generate_private_key(ec.SECP256R1())
        tampered = body.replace(b"bounce", b"bounce ", 1)
        attempts = [
            (body, sg_headers(body, key=other)),  # another key
            (tampered, sg_headers(body)),  # the body changed after signing
            (body, {"content-type": "application/json"}),  # not signed at all
            (body, sg_headers(body, age=11 * 60)),  # signed 11 minutes ago: a replay
        ]
        for content, headers in attempts:
            r = await env.http.post("/webhooks/sendgrid", content=content, headers=headers)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "unauthenticated"
        for malformed in (b"not json", b'{"event": "bounce"}'):
            r = await env.http.post(
                "/webhooks/sendgrid", content=malformed, headers=sg_headers(malformed)
            )
            assert r.status_code == 400, r.text

        unchanged = await delivery_row(env, row["notification_id"])
        assert unchanged["status"] == "sent" and unchanged["error_message"] is None
        assert address not in await suppressions(env)


async def test_a_bounce_stops_smtp_mail_until_the_suppression_is_deleted(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    mail = email_settings(
        smtp=SmtpSettings(host="127.0.0.1", port=port, starttls="never"),
        sendgrid=SendGridSettings(webhook_public_key=SG_PUBLIC),
    )
    async with running(settings, email=mail) as env:
        user = uid()
        address = await set_email(env, user)
        row = await sent_row(env, user)
        (received,) = inbox.to(address)
        assert row["status"] == "sent" and row["provider"] == "smtp"
        assert row["provider_message_id"] == received["Message-ID"]
        assert received["Message-ID"] == f"<{row['notification_id']}.email@notify.example.com>"

        # as if SendGrid had sent it (test setup), then SendGrid reports the bounce
        await set_row(env, row["id"], provider="sendgrid", provider_message_id="sg-1")
        bounce = sg_event(
            "bounce", address, "sg-1", int(time.time()), type="bounce", status="5.1.1"
        )
        r = await post_sendgrid(env, [bounce])
        assert r.json() == counts(1, 0, 0, 1)

        refused = await sent_row(env, user)
        assert refused["status"] == "failed"
        assert f"{address} is suppressed (bounce)" in refused["error_message"]
        await asyncio.sleep(0.2)
        assert len(inbox.to(address)) == 1  # nothing reached the SMTP server

        r = await env.http.get("/email-suppressions", headers={"authorization": "Bearer nope"})
        assert r.status_code == 401
        r = await env.http.get("/email-suppressions", params={"limit": 0}, headers=env.producer)
        assert r.status_code == 400
        r = await env.http.delete(f"/email-suppressions/{address.upper()}", headers=env.producer)
        assert r.status_code == 200, r.text
        assert r.json()["deleted"]["address"] == address
        assert r.json()["deleted"]["reason"] == "bounce"
        r = await env.http.delete(f"/email-suppressions/{address}", headers=env.producer)
        assert r.status_code == 404
        assert address not in await suppressions(env)

        again = await sent_row(env, user)
        assert again["status"] == "sent"
        assert len(inbox.to(address)) == 2


async def test_an_event_naming_another_address_does_not_suppress_it(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    _, port = smtp
    mail = email_settings(
        smtp=SmtpSettings(host="127.0.0.1", port=port, starttls="never"),
        sendgrid=SendGridSettings(webhook_public_key=SG_PUBLIC),
    )
    async with running(settings, email=mail) as env:
        user = uid()
        address = await set_email(env, user)
        row = await sent_row(env, user)
        assert row["recipient"] == address
        await set_row(env, row["id"], provider="sendgrid", provider_message_id="sg-2")
        our_id = f"<{row['notification_id']}.email@notify.example.com>"
        t = int(time.time())
        victims = [f"victim-{uid()}@example.com", f"victim-{uid()}@example.com"]
        forged = [
            sg_event("bounce", victims[0], "sg-2", t, type="bounce", status="5.1.1"),
            sg_event("spamreport", victims[1], None, t + 1, notify_message_id=our_id),
        ]
        r = await post_sendgrid(env, forged)
        assert r.status_code == 200, r.text
        assert r.json() == counts(2, 0, 0, 0)
        listed = await suppressions(env)
        assert not set(victims) & set(listed)

        # the address the delivery went to is suppressed, whatever its case
        own = [sg_event("spamreport", address.upper(), "sg-2", t + 2)]
        assert (await post_sendgrid(env, own)).json() == counts(1, 0, 0, 1)
        assert (await suppressions(env))[address]["reason"] == "complaint"


# --- SES through SNS --------------------------------------------------------------------


async def test_ses_events_through_sns_update_statuses_and_suppress(
    settings: NodeSettings,
    sns: SnsSide,
    moto_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    mail = email_settings(
        provider="ses",
        ses=SesSettings(region=REGION, endpoint_url=moto_url, sns_topic_arns=(TOPIC,)),
    )
    async with serving(sns.node(settings, email=mail)) as env:
        kept, bouncer = uid(), uid()
        kept_address = await set_email(env, kept)
        bouncer_address = await set_email(env, bouncer)
        delivered = await sent_row(env, kept)
        bounced = await sent_row(env, bouncer)
        assert delivered["provider"] == "ses"
        assert delivered["provider_message_id"] in stored_messages(moto_url)

        def our(row: dict[str, Any]) -> str:
            return f"<{row['notification_id']}.email@notify.example.com>"

        at = _now_iso()
        bounce = sns_notification(
            ses_event("Bounce", bounced["provider_message_id"], bouncer_address, our(bounced), at)
        )
        # a flipped byte: 401, nothing changed, and the certificate came from SNS's host
        tampered = {**bounce, "Message": bounce["Message"].replace("Permanent", "Permanenu")}
        r = await post_ses(env, tampered)
        assert r.status_code == 401, r.text
        assert sns.certificates == [CERT_URL]
        assert (await delivery_row(env, bounced["notification_id"]))["status"] == "sent"
        # signed by SNS, but for a topic this node did not subscribe to
        foreign = sns_notification(
            ses_event("Bounce", bounced["provider_message_id"], bouncer_address, our(bounced), at),
            topic="arn:aws:sns:eu-west-1:999999999999:someone-else",
        )
        assert (await post_ses(env, foreign)).status_code == 401
        assert bouncer_address not in await suppressions(env)

        r = await post_ses(env, bounce)
        assert r.status_code == 200, r.text
        assert r.json() == {"type": "Notification", **counts(1, 0, 0, 1)}
        r = await post_ses(env, bounce)  # SNS retries: a duplicate
        assert r.json() == {"type": "Notification", **counts(0, 1, 0, 0)}
        row = await delivery_row(env, bounced["notification_id"])
        assert row["status"] == "bounced"
        assert (
            row["error_message"] == "ses: bounced: Permanent/General: smtp; 550 5.1.1 user unknown"
        )

        delivery = ses_event(
            "Delivery", delivered["provider_message_id"], kept_address, our(delivered), at
        )
        r = await post_ses(env, sns_notification(delivery))
        assert r.json() == {"type": "Notification", **counts(1, 0, 0, 0)}
        row = await delivery_row(env, delivered["notification_id"])
        assert row["status"] == "delivered"
        assert row["delivered_at"] == dt.datetime.fromisoformat(at)

        complaint = ses_event(
            "Complaint", delivered["provider_message_id"], kept_address, our(delivered), at
        )
        r = await post_ses(env, sns_notification(complaint))
        assert r.json() == {"type": "Notification", **counts(1, 0, 0, 1)}
        assert (await delivery_row(env, delivered["notification_id"]))["status"] == "delivered"
        listed = await suppressions(env)
        assert listed[bouncer_address]["reason"] == "bounce"
        assert listed[kept_address]["reason"] == "complaint"
        assert listed[kept_address]["provider"] == "ses"

        unknown = ses_event("Delivery", "0100-not-ours", "x@example.com", "<x@y>", at)
        r = await post_ses(env, sns_notification(unknown))
        assert r.json() == {"type": "Notification", **counts(0, 0, 1, 0)}

        before = len(stored_messages(moto_url))
        for user in (kept, bouncer):
            refused = await sent_row(env, user)
            assert refused["status"] == "failed" and "suppressed" in refused["error_message"]
        assert len(stored_messages(moto_url)) == before
        assert sns.certificates == [CERT_URL]  # fetched once, then cached


async def test_sns_subscriptions_are_confirmed_on_sns_hosts_only(
    settings: NodeSettings, sns: SnsSide
) -> None:
    subscribe = (
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
        f"&TopicArn={TOPIC}&Token=2336412f37"
    )

    def confirmation(kind: str, url: str) -> dict[str, Any]:
        return sns_sign(
            {
                "Type": kind,
                "MessageId": str(uuid.uuid4()),
                "Token": "2336412f37",
                "TopicArn": TOPIC,
                "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
                "SubscribeURL": url,
                "Timestamp": _now_iso(),
            }
        )

    async with serving(sns.node(settings)) as env:  # NOTIFY_SES_SNS_TOPIC_ARNS unset: off
        r = await post_ses(env, confirmation("SubscriptionConfirmation", subscribe))
        assert r.status_code == 404, r.text
        assert "NOTIFY_SES_SNS_TOPIC_ARNS" in r.json()["error"]["message"]
        assert sns.subscribed == [] and sns.certificates == []

    ours = EmailSettings(providers={"ses": SesSettings(sns_topic_arns=(TOPIC,))})
    async with serving(sns.node(settings, email=ours)) as env:
        foreign = confirmation("SubscriptionConfirmation", subscribe)
        foreign = sns_sign({**foreign, "TopicArn": "arn:aws:sns:eu-west-1:999999999999:other"})
        r = await post_ses(env, foreign)
        assert r.status_code == 401, r.text
        assert "not one we subscribed to" in r.json()["error"]["message"]
        assert sns.subscribed == []

        r = await post_ses(env, confirmation("SubscriptionConfirmation", subscribe))
        assert r.status_code == 200, r.text
        assert r.json() == {"type": "SubscriptionConfirmation", "confirmed": True}
        assert sns.subscribed == [subscribe]

        for elsewhere in (
            "https://sns.eu-west-1.amazonaws.com.evil.example/?Action=ConfirmSubscription",
            "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
            "https://127.0.0.1/?Action=ConfirmSubscription",
        ):
            r = await post_ses(env, confirmation("SubscriptionConfirmation", elsewhere))
            assert r.status_code == 401, r.text
            assert "not on an SNS host" in r.json()["error"]["message"]
        assert sns.subscribed == [subscribe]

        sns.down = True  # SNS unreachable: 503, and SNS posts the confirmation again
        r = await post_ses(env, confirmation("SubscriptionConfirmation", subscribe))
        assert r.status_code == 503
        assert sns.subscribed == [subscribe]

        r = await post_ses(env, confirmation("UnsubscribeConfirmation", subscribe))
        assert r.status_code == 200
        assert r.json() == {"type": "UnsubscribeConfirmation"}

        forged = confirmation("SubscriptionConfirmation", subscribe)
        forged["Signature"] = sns_sign(
            {**forged, "Token": "other"}, key=rsa.generate_private_key(65537, 2048)
        )["Signature"]
        assert (await post_ses(env, forged)).status_code == 401
        assert (await post_ses(env, {"Type": "Notification"})).status_code == 401
        r = await env.http.post("/webhooks/ses", content=b"{not json")
        assert r.status_code == 400

    # the real getter refuses anything off SNS's hosts before any request
    with pytest.raises(Unauthenticated, match="not on an SNS host"):
        await get_subscribe_url("https://127.0.0.1:1/?Action=ConfirmSubscription")


# --- the status ordering ----------------------------------------------------------------


async def test_statuses_only_move_forward_and_bounces_and_drops_end_them(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    _, port = smtp
    mail = email_settings(smtp=SmtpSettings(host="127.0.0.1", port=port, starttls="never"))
    async with running(settings, email=mail) as env:
        assert env.node.database is not None
        db = env.node.database
        rows: dict[str, dict[str, Any]] = {}
        for name in ("clicked", "opened", "dropped", "deferred"):
            user = uid()
            await set_email(env, user)
            row = await sent_row(env, user)
            await set_row(env, row["id"], provider="ses", provider_message_id=f"ses-{row['id']}")
            rows[name] = {**row, "address": f"{user}@example.com"}
        base = dt.datetime.now(dt.UTC).replace(microsecond=0)

        def event(name: str, kind: Any, seconds: int, detail: str = "") -> ProviderEvent:
            row = rows[name]
            return ProviderEvent(
                provider="ses",
                provider_message_id=f"ses-{row['id']}",
                kind=kind,
                address=row["address"],
                detail=detail,
                at=base + dt.timedelta(seconds=seconds),
                event_id=uuid.uuid4().hex,
            )

        # receipts older than the retention are forgotten as events come in
        stale, recent = uuid.uuid4().hex, uuid.uuid4().hex
        async with db.write() as conn:
            await conn.execute(
                provider_event_receipts.insert(),
                [
                    {"key": stale, "received_at": base - dt.timedelta(days=8)},
                    {"key": recent, "received_at": base - dt.timedelta(days=6)},
                ],
            )
        answer = await apply_events(
            db,
            [
                # given out of order: applied by time
                event("clicked", "delivered", 30),
                event("clicked", "clicked", 10, "https://x.test/"),
                event("opened", "opened", 1),
                event("opened", "bounced", 2, "Permanent/General"),
                event("dropped", "dropped", 1, "Transient/MailboxFull"),
                event("deferred", "deferred", 1, "421 try later"),
            ],
        )
        assert answer == counts(6, 0, 0, 1)
        clicked = await delivery_row(env, rows["clicked"]["notification_id"])
        assert clicked["status"] == "clicked" and clicked["clicks"] == 1
        assert clicked["delivered_at"] == base + dt.timedelta(seconds=30)
        opened = await delivery_row(env, rows["opened"]["notification_id"])
        assert opened["status"] == "opened"  # read before it bounced: stays opened
        assert rows["opened"]["address"] in await suppressions(env)
        dropped = await delivery_row(env, rows["dropped"]["notification_id"])
        assert dropped["status"] == "failed" and dropped["dead_at"] is None
        assert dropped["error_message"] == "ses: dropped: Transient/MailboxFull"
        deferred = await delivery_row(env, rows["deferred"]["notification_id"])
        assert deferred["status"] == "sent"
        assert deferred["error_message"] == "ses: deferred: 421 try later"

        answer = await apply_events(
            db,
            [
                event("deferred", "delivered", 40),
                event("dropped", "delivered", 40),  # failed is final
                event("dropped", "opened", 41),  # counted, status kept
            ],
        )
        assert answer == counts(3, 0, 0, 0)
        deferred = await delivery_row(env, rows["deferred"]["notification_id"])
        assert deferred["status"] == "delivered" and deferred["error_message"] is None
        dropped = await delivery_row(env, rows["dropped"]["notification_id"])
        assert dropped["status"] == "failed" and dropped["opens"] == 1
        assert dropped["delivered_at"] is None
        async with db.read() as conn:
            kept = await conn.execute(
                sa.select(provider_event_receipts.c.key).where(
                    provider_event_receipts.c.key.in_([stale, recent])
                )
            )
            assert set(kept.scalars()) == {recent}
