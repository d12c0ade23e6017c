"""The delivery engine end to end, on both backends: a real SMTP server (aiosmtpd) receives
what the workers send; retries, dead letters, requeue, the breaker's failover, and signed
webhooks verified with the independent ``standardwebhooks`` package."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from notify.v1 import delivery_pb2, delivery_pb2_grpc, router_pb2
from notify.v1.router_pb2_grpc import RouterServiceStub
from standardwebhooks.webhooks import Webhook

from delivery_svc.config_email import EmailSettings
from delivery_svc.config_webhook import WebhookSettings
from delivery_svc.providers.sendgrid import SendGridSettings
from delivery_svc.providers.smtp import SmtpSettings
from notify_app.settings import NodeSettings
from notify_core.constants import amqp_connection_name
from preference_svc.validate import PreferencesUpdate
from tests.support.backends import POSTGRES_ADMIN_URL
from tests.support.cuts import close_rabbitmq_connections, terminate_postgres_backends
from tests.support.deliveries import delivery_row, set_email, status
from tests.support.ids import uid
from tests.support.nodes import embedded_settings, running
from tests.support.procs import ROOT
from tests.support.sendgrid import API_KEY as SENDGRID_KEY
from tests.support.sendgrid import FakeSendGrid
from tests.support.smtp import Inbox, with_smtp
from tests.support.waiting import eventually
from tests.support.webhooks import SECRET as HOOK_SECRET
from tests.support.webhooks import Receiver


async def test_an_email_arrives_multipart_with_its_headers(
    settings: NodeSettings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    async with running(settings, **with_smtp(settings, port)) as env:
        user = uid()
        address = await set_email(env, user)
        nid = await env.send(
            user,
            title="Your report",
            message="<script>alert(1)</script> is ready",
        )
        await eventually(lambda: asyncio.sleep(0, inbox.to(address)), lambda m: len(m) == 1)
        (mail,) = inbox.to(address)
        assert mail["Subject"] == "Your report"
        assert mail["Message-ID"] == f"<{nid}.email@x.test>"
        assert mail["List-Unsubscribe"].startswith("<http://127.0.0.1:")
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = mail.get_body(("html",))
        text = mail.get_body(("plain",))
        assert html is not None and text is not None
        html_body = html.get_content()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_body  # escaped
        assert "<script>" not in html_body
        assert "/t/o/" in html_body  # the open pixel
        assert "<script>alert(1)</script> is ready" in text.get_content()
        done = await eventually(lambda: status(env, nid), lambda d: d.get("status") == "sent")
        assert done["status"] == "sent"


async def test_retries_then_dead_letter_then_requeue_delivers(
    settings: NodeSettings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    inbox.fail = 3
    changes = with_smtp(settings, port, retry_schedule=(0.2, 0.2))  # 3 tries in all
    async with running(settings, **changes) as env:
        user = uid()
        address = await set_email(env, user)
        nid = await env.send(user)
        dead = await eventually(
            lambda: status(env, nid), lambda d: d.get("status") == "failed", timeout=20
        )
        assert inbox.refused == 3 and inbox.to(address) == []
        assert dead["status"] == "failed"
        stub = delivery_pb2_grpc.DeliveryServiceStub(env.grpc_channel)
        letters = await stub.ListDeadLetters(
            delivery_pb2.ListDeadLettersRequest(channel="email"), metadata=env.metadata
        )
        mine = [d for d in letters.dead_letters if d.notification_id == nid]
        assert len(mine) == 1 and mine[0].attempts == 3 and "451" in mine[0].error
        stats = await stub.GetDeliveryStats(
            delivery_pb2.GetDeliveryStatsRequest(), metadata=env.metadata
        )
        assert stats.failed >= 1 and stats.errors["TransientDeliveryError"] >= 3
        reply = await stub.RequeueDeadLetters(
            delivery_pb2.RequeueDeadLettersRequest(ids=[mine[0].id]), metadata=env.metadata
        )
        assert reply.requeued == 1
        await eventually(lambda: status(env, nid), lambda d: d.get("status") == "sent")
        assert len(inbox.to(address)) == 1


async def test_the_breaker_opens_fails_over_to_the_secondary_then_closes(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
    sendgrid: tuple[FakeSendGrid, str],
) -> None:
    primary, port = smtp
    secondary, sendgrid_url = sendgrid
    primary.fail = 1_000
    mail = EmailSettings(
        provider="smtp",
        fallback="sendgrid",
        sender="Notify <n@x.test>",
        providers={
            "smtp": SmtpSettings(host="127.0.0.1", port=port, starttls="never"),
            "sendgrid": SendGridSettings(api_key=SENDGRID_KEY, base_url=sendgrid_url),
        },
    )
    changes = {
        "email": mail,
        "retry_schedule": (0.3,) * 6,
        "breaker_threshold": 2,
        "breaker_reset": 1.5,
    }
    async with running(settings, **changes) as env:
        stub = delivery_pb2_grpc.DeliveryServiceStub(env.grpc_channel)

        async def breaker() -> delivery_pb2.ProviderStatus:
            reply = await stub.GetProviderStatus(
                delivery_pb2.GetProviderStatusRequest(), metadata=env.metadata
            )
            return next(p for p in reply.providers if p.provider == "smtp")

        user = uid()
        await set_email(env, user)
        first = [await env.send(user, title=f"n{i}") for i in range(3)]
        # two failures open the primary's breaker; the retries then go to the secondary
        for nid in first:
            done = await eventually(
                lambda nid=nid: delivery_row(env, nid), lambda r: r["status"] == "sent"
            )
            assert done["provider"] == "sendgrid"
        assert len(secondary.accepted) == 3
        assert (await breaker()).opened >= 1
        # the primary heals; after the reset a trial call goes to it and closes the breaker
        primary.fail = 0
        await asyncio.sleep(1.6)
        late = await env.send(user, title="late")
        done = await eventually(lambda: delivery_row(env, late), lambda r: r["status"] == "sent")
        assert done["provider"] == "smtp"
        assert (await breaker()).state == "closed"


async def test_a_webhook_goes_out_signed_and_verifies_independently(
    settings: NodeSettings,
    receiver: tuple[Receiver, int],
) -> None:
    rec, port = receiver
    hooks = WebhookSettings(secrets=(HOOK_SECRET,), allow_private=True, allow_http=True)
    async with running(settings, webhook=hooks) as env:
        user = uid()
        # The REST API takes https URLs only; this receiver is plain HTTP on 127.0.0.1,
        # which the node's webhook settings allow: store it through the store itself.
        assert env.node.preferences is not None
        await env.node.preferences.update(
            user, PreferencesUpdate(webhook_url=f"http://127.0.0.1:{port}/ok")
        )
        nid = await env.send(user, title="Hooked", data={"k": "v"})
        await eventually(lambda: asyncio.sleep(0, rec.requests), lambda got: len(got) == 1)
        (request,) = rec.requests
        payload = Webhook(HOOK_SECRET).verify(request.body, request.headers)
        assert request.headers["webhook-id"] == nid
        assert payload["type"] == "notification.created"
        assert payload["data"]["id"] == nid and payload["data"]["data"] == {"k": "v"}
        done = await eventually(
            lambda: status(env, nid, "webhook"), lambda d: d.get("status") == "sent"
        )
        assert done["status"] == "sent"


async def test_a_private_webhook_target_is_refused_for_good(settings: NodeSettings) -> None:
    hooks = WebhookSettings(secrets=(HOOK_SECRET,), allow_http=True)
    async with running(settings, webhook=hooks) as env:
        user = uid()
        assert env.node.preferences is not None
        await env.node.preferences.update(
            user, PreferencesUpdate(webhook_url="http://10.0.0.5/hook")
        )
        nid = await env.send(user)
        done = await eventually(
            lambda: status(env, nid, "webhook"), lambda d: d.get("status") == "failed"
        )
        assert done["status"] == "failed"
        stub = delivery_pb2_grpc.DeliveryServiceStub(env.grpc_channel)
        letters = await stub.ListDeadLetters(
            delivery_pb2.ListDeadLettersRequest(channel="webhook"), metadata=env.metadata
        )
        (mine,) = [d for d in letters.dead_letters if d.notification_id == nid]
        assert mine.attempts == 1  # permanent: not retried
        assert "10.0.0.5" in mine.error


async def test_a_templated_email_is_rendered_inlined_and_escaped(
    settings: NodeSettings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    async with running(settings, **with_smtp(settings, port)) as env:
        name = f"t-{uuid.uuid4().hex[:8]}"
        r = await env.http.put(
            f"/templates/{name}/email",
            json={
                "locale": "fr",
                "subject": "Bonjour {{ name }}",
                "body": (
                    "<html><head><style>p { color: red }</style></head><body>"
                    "<p>Salut {{ name }}, {{ comment }}</p>"
                    '<a href="https://example.com/post/1">voir</a></body></html>'
                ),
                "variables": ["name", "comment"],
            },
            headers=env.producer,
        )
        assert r.status_code == 201, r.text
        user = uid()
        address = await set_email(env, user)
        await env.send(
            user,
            template=name,
            locale="fr-CA",  # falls back to fr
            data={"name": "Zoé", "comment": "<img src=x onerror=alert(1)>"},
        )
        await eventually(lambda: asyncio.sleep(0, inbox.to(address)), lambda m: len(m) == 1)
        (mail,) = inbox.to(address)
        assert mail["Subject"] == "Bonjour Zoé"
        html = mail.get_body(("html",))
        text = mail.get_body(("plain",))
        assert html is not None and text is not None
        body = html.get_content()
        assert 'style="color: red' in body or 'style="color:red' in body  # CSS inlined
        assert "&lt;img src=x onerror=alert(1)&gt;" in body and "<img src=x" not in body
        assert "https://example.com/post/1" not in body  # the link is click-tracked
        assert "/t/c/" in body
        assert "Salut Zoé" in text.get_content()
        # data missing a declared variable: a clear error, nothing sent
        bad = await env.send(user, template=name, locale="fr", data={"name": "Zoé"})
        failed = await eventually(lambda: delivery_row(env, bad), lambda r: r["status"] == "failed")
        assert "comment" in (failed["error_message"] or "")
        assert len(inbox.to(address)) == 1
        # data that makes the template run away: past the render budget, failed for good
        loops = "{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}"
        busy = {"subject": "S", "body": f"<p>{loops}</p>", "variables": ["n"]}
        r = await env.http.put(f"/templates/{name}-busy/email", json=busy, headers=env.producer)
        assert r.status_code == 201, r.text
        runaway = await env.send(user, template=f"{name}-busy", data={"n": 1500})
        failed = await eventually(
            lambda: delivery_row(env, runaway), lambda r: r["status"] == "failed"
        )
        assert "100000 steps" in (failed["error_message"] or "")
        assert failed["dead_at"] is not None  # permanent: not retried
        assert len(inbox.to(address)) == 1


async def test_dead_letters_are_listed_and_requeued_from_the_cli(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    """On SQLite: the CLI opens the node's database file and queue (the queue is in it)."""
    settings = embedded_settings(tmp_path)
    inbox, port = smtp
    inbox.fail = 1_000
    async with running(settings, **with_smtp(settings, port, retry_schedule=())) as env:
        user = uid()
        address = await set_email(env, user)
        nid = await env.send(user)
        await eventually(lambda: status(env, nid), lambda d: d.get("status") == "failed")
        cli_env = {**os.environ, "NOTIFY_DATABASE_URL": settings.database_url}
        listed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "notify_app.cli", "dead-letters", "--json"],
            env=cli_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        (letter,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert letter["notification_id"] == nid and "451" in letter["error"]
        inbox.fail = 0
        requeued = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "notify_app.cli", "requeue", letter["id"]],
            env=cli_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert requeued.returncode == 0, requeued.stderr
        assert "requeued 1" in requeued.stdout
        # the node's worker sees the job the CLI wrote into the same database
        await eventually(lambda: status(env, nid), lambda d: d.get("status") == "sent")
        assert len(inbox.to(address)) == 1


async def test_a_retrying_delivery_shows_its_attempts_and_last_error_beside_its_reason(
    settings: NodeSettings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    inbox.fail = 1
    async with running(settings, **with_smtp(settings, port, retry_schedule=(600.0,))) as env:
        user = uid()
        await set_email(env, user)
        nid = await env.send(user)
        shown = await eventually(lambda: status(env, nid), lambda d: d.get("status") == "retrying")
        assert shown["attempts"] == 1
        assert "451" in shown["last_error"]
        assert shown["reason"] and "451" not in shown["reason"]  # the routing reason, kept
        assert shown["until"] is not None  # the next try
        assert shown["id"]
        reply = await RouterServiceStub(env.grpc_channel).ListDeliveries(
            router_pb2.ListDeliveriesRequest(notification_id=nid), metadata=env.metadata
        )
        (email_row,) = [d for d in reply.deliveries if d.channel == "email"]
        assert (email_row.status, email_row.attempts) == ("retrying", 1)
        assert "451" in email_row.last_error and email_row.reason == shown["reason"]
        assert email_row.id == shown["id"] and email_row.until.seconds > 0


async def test_a_retry_whose_broker_connection_drops_is_still_retried(
    settings: NodeSettings, smtp: tuple[Inbox, int]
) -> None:
    if settings.amqp_url is None:
        pytest.skip("the queue is in the database: there is no broker connection to cut")
    inbox, port = smtp
    inbox.fail = 1
    connection = amqp_connection_name(settings.namespace)
    # The refusal is answered only once the node's broker connection is gone: the retry is
    # recorded, and its job staged, while RabbitMQ cannot take it. The retry waits longer
    # than the redelivery of the first job takes, so only the retry's own job can send it.
    inbox.before_refusing = lambda: close_rabbitmq_connections(connection)
    async with running(settings, **with_smtp(settings, port, retry_schedule=(3.0,))) as env:
        user = uid()
        address = await set_email(env, user)
        nid = await env.send(user)
        done = await eventually(
            lambda: status(env, nid), lambda d: d.get("status") == "sent", timeout=60
        )
        assert done["attempts"] == 2 and inbox.refused == 1
        assert len(inbox.to(address)) == 1


async def test_a_database_cut_while_recording_sends_nothing_twice(
    settings: NodeSettings, smtp: tuple[Inbox, int]
) -> None:
    if settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite: there is no database connection to cut")
    inbox, port = smtp
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    database = settings.database_url.rsplit("/", 1)[1]
    # The server has the message; before it answers, every connection of the node's
    # database is gone, so the worker's record of the send fails on its first try.
    inbox.before_accepting = lambda: terminate_postgres_backends(admin, database)
    async with running(settings, **with_smtp(settings, port, send_lease=5.0)) as env:
        user = uid()
        address = await set_email(env, user)
        nid = await env.send(user)

        async def settled() -> dict[str, Any]:
            r = await env.http.get(f"/notifications/{nid}/deliveries", headers=env.producer)
            if r.status_code != 200:  # the edge's own pooled connection was cut too
                return {}
            return {d["channel"]: d for d in r.json()["deliveries"]}.get("email", {})

        done = await eventually(settled, lambda d: d.get("status") == "sent", timeout=30)
        assert inbox.before_accepting is None  # the cut happened
        # Without a second try at the record, the lease runs out and the email goes again.
        assert done["attempts"] == 1
        assert len(inbox.to(address)) == 1
