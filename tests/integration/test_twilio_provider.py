"""TwilioProvider against a local Twilio speaking the Messages API
(:mod:`tests.support.twilio`), and Twilio's signed status callbacks arriving at
``POST /webhooks/twilio`` and changing the sms deliveries, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from delivery_svc.providers.base import Outcome, SmsMessage
from delivery_svc.providers.twilio import (
    TwilioCallbacks,
    TwilioProvider,
    status_callback_url,
    status_route,
)
from notify_core.auth import Authenticator
from notify_core.db.engine import Database
from notify_core.db.migrate import upgrade
from notify_core.db.schema import notification_deliveries, notifications, phone_suppressions
from notify_core.routes import mount
from tests.support.asgi import serving_app
from tests.support.outcomes import permanent, taken, transient
from tests.support.procs import free_port
from tests.support.twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    HANGS,
    INVALID,
    MESSAGING_SERVICE,
    NO_PERMISSION,
    NOT_MOBILE,
    NOT_ROUTABLE,
    OPTED_OUT,
    RATE_LIMITED,
    SERVER_ERROR,
    VALID,
    FakeTwilio,
    post_status,
    sign,
    status_fields,
)

CALLBACK = "https://notify.example.com/webhooks/twilio"


def message(to: str = VALID, **changes: Any) -> SmsMessage:
    base = SmsMessage(send_id=str(uuid.uuid4()), to=to, body="Deploy: finished")
    return dataclasses.replace(base, **changes)


def provider_for(fake: FakeTwilio, **changes: Any) -> TwilioProvider:
    options: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "sender": FROM_NUMBER,
        "base_url": fake.base_url,
        **changes,
    }
    return TwilioProvider(**options)


@pytest.fixture
async def provider(twilio: FakeTwilio) -> AsyncIterator[TwilioProvider]:
    p = provider_for(twilio)
    yield p
    await p.close()


# --- sending ----------------------------------------------------------------------------


async def test_a_text_is_taken_with_twilio_message_sid(
    provider: TwilioProvider, twilio: FakeTwilio
) -> None:
    result = taken(await provider.send(message(status_callback=CALLBACK)))
    assert result.provider == "twilio"
    assert result.provider_id is not None and result.provider_id.startswith("SM")
    assert [m["sid"] for m in twilio.messages] == [result.provider_id]
    assert twilio.forms[-1] == {
        "To": VALID,
        "From": FROM_NUMBER,
        "Body": "Deploy: finished",
        "StatusCallback": CALLBACK,
    }


async def test_without_a_callback_none_is_sent(
    provider: TwilioProvider, twilio: FakeTwilio
) -> None:
    taken(await provider.send(message()))
    assert "StatusCallback" not in twilio.forms[-1]


async def test_a_messaging_service_is_sent_as_messaging_service_sid(twilio: FakeTwilio) -> None:
    provider = provider_for(twilio, sender=MESSAGING_SERVICE)
    try:
        taken(await provider.send(message(body="Grüße ✓")))
    finally:
        await provider.close()
    form = twilio.forms[-1]
    assert form["MessagingServiceSid"] == MESSAGING_SERVICE
    assert "From" not in form
    assert form["Body"] == "Grüße ✓"
    assert twilio.messages[-1]["status"] == "accepted"


async def test_texts_share_one_connection_pool(
    provider: TwilioProvider, twilio: FakeTwilio
) -> None:
    results = await asyncio.gather(*(provider.send(message()) for _ in range(10)))
    assert all(r.ok for r in results)
    assert len({r.provider_id for r in results}) == 10


@pytest.mark.parametrize(
    ("to", "code", "gone"),
    [(INVALID, 21211, True), (OPTED_OUT, 21610, True), (NOT_MOBILE, 21614, True)],
)
async def test_a_number_that_is_gone_is_unreachable(
    provider: TwilioProvider, to: str, code: int, gone: bool
) -> None:
    result = permanent(await provider.send(message(to)), match=str(code))
    assert result.gone is gone
    assert "twilio.com/docs/errors" in result.detail


@pytest.mark.parametrize(("to", "code"), [(NOT_ROUTABLE, 21612), (NO_PERMISSION, 21408)])
async def test_other_refusals_of_the_number_are_permanent_not_gone(
    provider: TwilioProvider, to: str, code: int
) -> None:
    result = permanent(await provider.send(message(to)), match=f"400 {code}")
    assert not result.gone


async def test_rate_limited_is_transient_with_retry_after(provider: TwilioProvider) -> None:
    result = transient(await provider.send(message(RATE_LIMITED)), match="429 20429")
    assert result.retry_after == 7.0


async def test_a_server_error_is_transient(provider: TwilioProvider) -> None:
    result = transient(await provider.send(message(SERVER_ERROR)), match="500")
    assert result.retry_after is None


async def test_a_body_twilio_refuses_is_permanent(provider: TwilioProvider) -> None:
    permanent(await provider.send(message(body="a" * 1601)), match="21617")


async def test_bad_credentials_are_permanent_and_name_the_settings(twilio: FakeTwilio) -> None:
    provider = provider_for(twilio, auth_token="0" * 32)
    try:
        result = permanent(await provider.send(message()), match="401 20003")
    finally:
        await provider.close()
    assert "NOTIFY_TWILIO_AUTH_TOKEN" in result.detail
    assert not result.gone
    assert twilio.messages == []


async def test_a_number_not_in_e164_is_refused_before_sending(
    provider: TwilioProvider, twilio: FakeTwilio
) -> None:
    permanent(await provider.send(message("0044 20 7946 0000")), match="E.164")
    assert twilio.forms == []


async def test_a_timeout_is_transient(twilio: FakeTwilio) -> None:
    provider = provider_for(twilio, timeout=0.3)
    try:
        transient(await provider.send(message(HANGS)), match="timed out")
    finally:
        await provider.close()


async def test_an_unreachable_api_is_transient() -> None:
    provider = TwilioProvider(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        sender=FROM_NUMBER,
        base_url=f"http://127.0.0.1:{free_port()}",
    )
    try:
        transient(await provider.send(message()), match="ConnectError")
    finally:
        await provider.close()


# --- status callbacks -------------------------------------------------------------------


@pytest.fixture(params=["embedded", "real"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'sms.db'}"
        if request.param == "embedded"
        else request.getfixturevalue("postgres_url")
    )
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.close()


@dataclasses.dataclass
class Edge:
    """The callback route on a real server, a Twilio, and a provider sending through it."""

    public_url: str
    db: Database
    twilio: FakeTwilio
    provider: TwilioProvider

    @property
    def callback(self) -> str:
        return status_callback_url(self.public_url)

    async def sent(self, to: str = VALID, recipient: str | None = None) -> dict[str, Any]:
        """Send a text with the callback URL, recorded as an sms delivery that was sent."""
        result = taken(await self.provider.send(message(to, status_callback=self.callback)))
        await record(self.db, result, recipient or to)
        resource = self.twilio.messages[-1]
        assert resource["status_callback"] == self.callback
        return resource

    async def delivery(self, sid: str) -> dict[str, Any]:
        d = notification_deliveries.c
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(notification_deliveries).where(d.provider_message_id == sid)
                )
            ).one()
        return dict(row._mapping)

    async def suppressed(self, number: str) -> dict[str, Any] | None:
        p = phone_suppressions.c
        async with self.db.read() as conn:
            row = (
                await conn.execute(sa.select(phone_suppressions).where(p.number == number))
            ).first()
        return dict(row._mapping) if row else None


async def record(db: Database, outcome: Outcome, recipient: str) -> str:
    """A notification and its sms delivery as the worker leaves it after ``outcome``."""
    nid = str(uuid.uuid4())
    async with db.write() as conn:
        await conn.execute(
            notifications.insert().values(
                id=nid, user_id=f"u-{nid[:8]}", type="deploy", title="Deploy", message="done"
            )
        )
        await conn.execute(
            notification_deliveries.insert().values(
                id=str(uuid.uuid4()),
                notification_id=nid,
                channel="sms",
                status="sent",
                provider=outcome.provider,
                provider_message_id=outcome.provider_id,
                recipient=recipient,
            )
        )
    return nid


async def forget(db: Database, numbers: list[str]) -> None:
    async with db.write() as conn:
        await conn.execute(
            phone_suppressions.delete().where(phone_suppressions.c.number.in_(numbers))
        )


@pytest.fixture
async def edge(db: Database, twilio: FakeTwilio) -> AsyncIterator[Edge]:
    app = Starlette()
    provider = provider_for(twilio)
    async with serving_app(app) as port:
        public_url = f"http://127.0.0.1:{port}"
        callbacks = TwilioCallbacks(AUTH_TOKEN, public_url)
        auth = Authenticator(frozenset({"producer-key"}), None)
        app.router.routes.extend(mount([status_route(callbacks, db)], auth))
        yield Edge(public_url, db, twilio, provider)
    await provider.close()


async def test_delivered_marks_the_delivery_delivered(edge: Edge) -> None:
    sent = await edge.sent()
    for status in ("queued", "sending", "sent"):
        r = await post_status(edge.callback, status_fields(sent, status))
        assert r.status_code == 200, r.text
        assert (await edge.delivery(sent["sid"]))["status"] == "sent"
    r = await post_status(edge.callback, status_fields(sent, "delivered"))
    assert r.status_code == 200, r.text
    assert r.json() == {"matched": 1, "unknown": 0, "suppressed": 0}
    row = await edge.delivery(sent["sid"])
    assert row["status"] == "delivered"
    assert row["delivered_at"] is not None
    # a late "sent" does not move it back
    await post_status(edge.callback, status_fields(sent, "sent"))
    assert (await edge.delivery(sent["sid"]))["status"] == "delivered"


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        ("undelivered", 30005, "unreachable"),
        ("undelivered", 30006, "unreachable"),
        ("failed", 21610, "opted_out"),
        ("failed", 21614, "unreachable"),
        ("undelivered", 30003, None),  # switched off: it will be back
        ("undelivered", 30007, None),  # carrier filtering
        ("failed", None, None),
    ],
)
async def test_a_failure_fails_the_delivery_and_suppresses_numbers_that_are_gone(
    edge: Edge, status: str, code: int | None, reason: str | None
) -> None:
    number = f"+1415555{uuid.uuid4().int % 10_000:04d}"
    sent = await edge.sent(number)
    try:
        r = await post_status(edge.callback, status_fields(sent, status, code))
        assert r.status_code == 200, r.text
        assert r.json()["suppressed"] == (1 if reason else 0)
        row = await edge.delivery(sent["sid"])
        assert row["status"] == "failed"
        assert row["dead_at"] is None
        assert row["error_message"].startswith(f"twilio: failed: {status}")
        if code is not None:
            assert str(code) in row["error_message"]
        found = await edge.suppressed(number)
        assert (found["reason"] if found else None) == reason
        if found:
            assert found["provider"] == "twilio"
    finally:
        await forget(edge.db, [number])


async def test_a_number_other_than_the_recipient_is_not_suppressed(edge: Edge) -> None:
    number = f"+1415556{uuid.uuid4().int % 10_000:04d}"
    sent = await edge.sent(number, recipient="+14155550199")
    r = await post_status(edge.callback, status_fields(sent, "undelivered", 30005))
    assert r.status_code == 200 and r.json()["suppressed"] == 0
    assert (await edge.delivery(sent["sid"]))["status"] == "failed"
    assert await edge.suppressed(number) is None


async def test_an_unknown_message_changes_nothing(edge: Edge) -> None:
    fields = status_fields(
        {"account_sid": ACCOUNT_SID, "sid": "SM" + "0" * 32, "to": "+14155550123"},
        "undelivered",
        30005,
    )
    r = await post_status(edge.callback, fields)
    assert r.status_code == 200
    assert r.json() == {"matched": 0, "unknown": 1, "suppressed": 0}
    assert await edge.suppressed("+14155550123") is None


async def test_a_signed_query_string_is_part_of_the_url(edge: Edge) -> None:
    sent = await edge.sent()
    url = f"{edge.callback}?attempt=1"
    r = await post_status(url, status_fields(sent, "delivered"))
    assert r.status_code == 200, r.text
    assert (await edge.delivery(sent["sid"]))["status"] == "delivered"


@pytest.mark.parametrize(
    "forge",
    [
        {"signature": ""},  # none
        {"signature": "bm90IGEgc2lnbmF0dXJl"},  # not Twilio's
        {"auth_token": "0" * 32},  # another account's token
        {"signed_url": "https://elsewhere.example/webhooks/twilio"},  # another URL
    ],
)
async def test_a_post_twilio_did_not_sign_is_refused(edge: Edge, forge: dict[str, str]) -> None:
    sent = await edge.sent()
    r = await post_status(edge.callback, status_fields(sent, "delivered"), **forge)
    assert r.status_code == 401, r.text
    assert "X-Twilio-Signature" in r.json()["error"]["message"]
    assert (await edge.delivery(sent["sid"]))["status"] == "sent"


async def test_a_changed_field_breaks_the_signature(edge: Edge) -> None:
    sent = await edge.sent()
    fields = status_fields(sent, "delivered")
    signed = status_fields(sent, "sent")
    r = await post_status(edge.callback, fields, signature=sign(AUTH_TOKEN, edge.callback, signed))
    assert r.status_code == 401
    assert (await edge.delivery(sent["sid"]))["status"] == "sent"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"MessageStatus": "delivered", "To": VALID}, "MessageSid"),
        ({"MessageSid": "SM123", "MessageStatus": "delivered"}, "MessageSid"),
        ({"MessageSid": "SM" + "a" * 32}, "MessageStatus"),
        ({"MessageSid": "SM" + "a" * 32, "MessageStatus": "failed", "ErrorCode": "x"}, "ErrorCode"),
    ],
)
async def test_a_signed_post_that_is_not_a_status_callback_is_400(
    edge: Edge, fields: dict[str, str], field: str
) -> None:
    r = await post_status(edge.callback, fields)
    assert r.status_code == 400, r.text
    assert field in r.text


async def test_a_post_that_is_not_a_form_is_400(edge: Edge) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(edge.callback, json={"MessageSid": "SM" + "a" * 32})
    assert r.status_code == 400
    assert "content-type" in r.text


async def test_without_callbacks_configured_the_route_answers_503(db: Database) -> None:
    auth = Authenticator(frozenset({"producer-key"}), None)
    app = Starlette(routes=mount([status_route(None, db)], auth))
    async with serving_app(app) as port:
        url = f"http://127.0.0.1:{port}/webhooks/twilio"
        r = await post_status(url, {"MessageSid": "SM" + "a" * 32, "MessageStatus": "sent"})
    assert r.status_code == 503
    assert "NOTIFY_PUBLIC_URL" in r.text
