"""The webhook sender against a real HTTP(S) server (:mod:`tests.support.webhooks`).

Every request the server receives is checked with the independent ``standardwebhooks``
package; the status handling, timeouts, redirects and the SSRF guard are exercised over
real sockets. Names that must resolve to a given address (split-horizon DNS) go through
the sender's resolver hook; everything else uses the system's resolver.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from delivery_svc.providers.base import WebhookMessage
from delivery_svc.providers.webhook import HttpWebhookSender
from delivery_svc.transport.ssrf import TargetPolicy, static_resolver
from notify_app.settings import load_settings
from tests.support.asgi import serving_app
from tests.support.outcomes import permanent, taken, transient
from tests.support.webhooks import SECRET, Receiver, secret

OLD_SECRET = secret(9)
OTHER_SECRET = secret(11)
LOCAL = TargetPolicy(allow_private=True, allow_http=True)


@asynccontextmanager
async def sender_of(*secrets: str, **options: Any) -> AsyncIterator[HttpWebhookSender]:
    options.setdefault("policy", LOCAL)
    options.setdefault("timeout", 3.0)
    sender = HttpWebhookSender(secrets or (SECRET,), **options)
    try:
        yield sender
    finally:
        await sender.close()


def message(url: str, **payload: Any) -> WebhookMessage:
    return WebhookMessage(
        url=url,
        message_id=f"msg_{uuid.uuid4().hex}",
        payload={"type": "comment.created", "data": {"text": "héllo", **payload}},
        timestamp=int(time.time()),
    )


# --- signing -----------------------------------------------------------------------------


async def test_every_request_verifies_with_the_standard_webhooks_library(
    receiver: tuple[Receiver, int],
) -> None:
    rec, port = receiver
    msg = message(f"http://127.0.0.1:{port}/ok", n=1)
    async with sender_of(SECRET, OLD_SECRET) as sender:
        result = await sender.send(msg)
    assert result.provider == "webhook"
    assert result.provider_id == msg.message_id
    [got] = rec.requests
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == msg.message_id
    assert got.headers["webhook-timestamp"] == str(msg.timestamp)
    assert got.body == json.dumps(msg.payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert got.body.decode() == '{"type":"comment.created","data":{"text":"héllo","n":1}}'
    # Signed with both secrets (rotation): each verifies on its own.
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(SECRET).verify(got.body, got.headers) == dict(msg.payload)
    assert Webhook(OLD_SECRET).verify(got.body, got.headers) == dict(msg.payload)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(got.body.replace(b'"n":1', b'"n":2'), got.headers)


async def test_connections_are_pooled_across_sends(receiver: tuple[Receiver, int]) -> None:
    rec, port = receiver
    async with sender_of() as sender:
        for _ in range(3):
            taken(await sender.send(message(f"http://127.0.0.1:{port}/accepted")))
    assert len(rec.requests) == 3
    assert len({r.client_port for r in rec.requests}) == 1
    for got in rec.requests:
        Webhook(SECRET).verify(got.body, got.headers)


async def test_without_a_secret_nothing_is_sent(receiver: tuple[Receiver, int]) -> None:
    rec, port = receiver
    sender = HttpWebhookSender((), policy=LOCAL)
    try:
        permanent(
            await sender.send(message(f"http://127.0.0.1:{port}/ok")), match="NOTIFY_WEBHOOK_SECRET"
        )
    finally:
        await sender.close()
    assert rec.requests == []


async def test_a_message_id_with_a_dot_is_refused(receiver: tuple[Receiver, int]) -> None:
    rec, port = receiver
    msg = WebhookMessage(f"http://127.0.0.1:{port}/ok", "msg.1", {"a": 1}, int(time.time()))
    async with sender_of() as sender:
        permanent(await sender.send(msg), match="webhook-id")
    assert rec.requests == []


# --- answers -----------------------------------------------------------------------------


async def test_a_redirect_is_not_followed(receiver: tuple[Receiver, int]) -> None:
    rec, port = receiver
    async with sender_of() as sender:
        permanent(
            await sender.send(message(f"http://127.0.0.1:{port}/redirect")),
            match="redirects are not followed",
        )
    assert [r.path for r in rec.requests] == ["/redirect"]


@pytest.mark.parametrize(
    ("path", "words"), [("/gone", "410 Gone"), ("/bad", '400: {"error": "no such user"}')]
)
async def test_gone_and_other_client_errors_are_permanent(
    receiver: tuple[Receiver, int], path: str, words: str
) -> None:
    _, port = receiver
    async with sender_of() as sender:
        caught = permanent(await sender.send(message(f"http://127.0.0.1:{port}{path}")))
    assert words in caught.message
    assert caught.retry_after is None


async def test_too_many_requests_is_transient_with_its_retry_after(
    receiver: tuple[Receiver, int],
) -> None:
    _, port = receiver
    async with sender_of() as sender:
        caught = transient(await sender.send(message(f"http://127.0.0.1:{port}/throttle")))
        assert caught.retry_after == 7.0
        caught = transient(await sender.send(message(f"http://127.0.0.1:{port}/request-timeout")))
        assert "408" in caught.message
        caught = transient(await sender.send(message(f"http://127.0.0.1:{port}/unavailable")))
        assert caught.retry_after is not None
        assert 100 <= caught.retry_after <= 121


async def test_a_server_error_is_transient(receiver: tuple[Receiver, int]) -> None:
    _, port = receiver
    async with sender_of() as sender:
        transient(await sender.send(message(f"http://127.0.0.1:{port}/error")), match="500: boom")


async def test_a_slow_receiver_times_out_as_transient(receiver: tuple[Receiver, int]) -> None:
    rec, port = receiver
    # /slow never answers while the test runs: only the sender's timeout can end the send
    # (the outer bound turns a hang into a failure instead of a stuck run).
    async with sender_of(timeout=0.5) as sender, asyncio.timeout(60):
        transient(await sender.send(message(f"http://127.0.0.1:{port}/slow")))
    assert not rec.release.is_set()
    assert [r.path for r in rec.requests] == ["/slow"]


async def test_an_endless_answer_is_read_only_so_far(receiver: tuple[Receiver, int]) -> None:
    _, port = receiver
    async with sender_of(timeout=3.0) as sender:
        result = await sender.send(message(f"http://127.0.0.1:{port}/endless"))
    assert result.provider_id is not None


async def test_a_closed_port_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with sender_of() as sender:
        transient(
            await sender.send(message(f"http://127.0.0.1:{port}/ok")), match="could not reach"
        )


# --- where webhooks may go (SSRF) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.0.0.5/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://[::1]/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://100.64.0.1/hook", "CGNAT"),
        ("https://[::ffff:10.0.0.5]/hook", "IPv4 10.0.0.5 inside IPv6"),
        ("https://[fd00::1]/hook", "private"),
        ("https://2130706433/hook", "loopback"),
        ("https://0x7f.1/hook", "loopback"),
    ],
)
async def test_private_targets_are_refused(url: str, why: str) -> None:
    async with sender_of(policy=TargetPolicy(), timeout=2.0) as sender:
        caught = permanent(await sender.send(message(url)))
    assert "refused webhook target" in caught.message
    assert why in caught.message


async def test_a_refused_target_is_never_contacted(receiver: tuple[Receiver, int]) -> None:
    rec, port = receiver
    async with sender_of(policy=TargetPolicy(allow_http=True)) as sender:
        for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
            permanent(await sender.send(message(f"http://{host}:{port}/ok")), match="loopback")
    assert rec.requests == []


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    resolver = static_resolver(
        {"internal.notify.test": ["10.1.2.3"], "mixed.notify.test": ["8.8.8.8", "127.0.0.1"]}
    )
    async with sender_of(policy=TargetPolicy(), resolver=resolver) as sender:
        caught = permanent(await sender.send(message("https://internal.notify.test/hook")))
        assert "internal.notify.test: resolves to 10.1.2.3" in caught.message
        # One private address among public ones is enough to refuse.
        permanent(
            await sender.send(message("https://mixed.notify.test/hook")),
            match=r"resolves to 127\.0\.0\.1",
        )
        permanent(
            await sender.send(message("https://nowhere.notify.test/hook")), match="does not resolve"
        )


async def test_the_connection_goes_to_the_checked_address_under_the_original_name(
    receiver: tuple[Receiver, int],
) -> None:
    """``.test`` names never resolve in public DNS: reaching the server proves the socket
    went to the address the guard resolved and checked, while Host kept the name."""
    rec, port = receiver
    resolver = static_resolver({"hooks.notify.test": ["127.0.0.1"]})
    policy = TargetPolicy(allow_http=True, allowed_hosts=("hooks.notify.test",))
    async with sender_of(policy=policy, resolver=resolver) as sender:
        taken(await sender.send(message(f"http://hooks.notify.test:{port}/ok")))
        # The allow-list names the host, not its addresses: another name is refused.
        permanent(await sender.send(message(f"http://127.0.0.1:{port}/ok")), match="loopback")
    [got] = rec.requests
    assert got.headers["host"] == f"hooks.notify.test:{port}"
    Webhook(SECRET).verify(got.body, got.headers)


async def test_allowed_networks_let_their_addresses_through(
    receiver: tuple[Receiver, int],
) -> None:
    rec, port = receiver
    policy = TargetPolicy(allow_http=True, allowed_hosts=("127.0.0.0/8",))
    async with sender_of(policy=policy, timeout=2.0) as sender:
        taken(await sender.send(message(f"http://127.0.0.1:{port}/ok")))
        permanent(await sender.send(message("http://10.0.0.5/ok")), match="private")
    assert len(rec.requests) == 1


async def test_https_is_required_unless_http_is_allowed(receiver: tuple[Receiver, int]) -> None:
    rec, port = receiver
    async with sender_of(policy=TargetPolicy(allow_private=True)) as sender:
        permanent(await sender.send(message(f"http://127.0.0.1:{port}/ok")), match="https only")
        permanent(await sender.send(message(f"ftp://127.0.0.1:{port}/ok")), match="must be https")
    assert rec.requests == []


async def test_https_verifies_the_name_while_connecting_to_the_checked_address(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("hooks.notify.test")
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    rec = Receiver()
    resolver = static_resolver({"hooks.notify.test": ["127.0.0.1"]})
    async with serving_app(
        rec.app(), ssl_keyfile=str(key_file), ssl_certfile=str(cert_file)
    ) as port:
        policy = TargetPolicy(allowed_hosts=("hooks.notify.test", "127.0.0.1"))
        async with sender_of(policy=policy, ssl_context=trust, resolver=resolver) as sender:
            taken(await sender.send(message(f"https://hooks.notify.test:{port}/ok")))
            # The certificate names hooks.notify.test only: by address it does not verify.
            transient(
                await sender.send(message(f"https://127.0.0.1:{port}/ok")), match="could not reach"
            )
    [got] = rec.requests
    assert got.headers["host"] == f"hooks.notify.test:{port}"
    Webhook(SECRET).verify(got.body, got.headers)


async def test_the_sender_takes_its_settings_from_the_environment(
    receiver: tuple[Receiver, int],
) -> None:
    rec, port = receiver
    env = {
        "NOTIFY_WEBHOOK_SECRET": f"{SECRET} {OLD_SECRET}",
        "NOTIFY_WEBHOOK_TIMEOUT": "2",
        "NOTIFY_WEBHOOK_ALLOW_HTTP": "true",
        "NOTIFY_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    }
    sender = HttpWebhookSender.from_settings(load_settings(env, env_file=None).webhook)
    try:
        taken(await sender.send(message(f"http://127.0.0.1:{port}/ok")))
        permanent(await sender.send(message("http://10.0.0.5/ok")), match="private")
    finally:
        await sender.close()
    [got] = rec.requests
    Webhook(OLD_SECRET).verify(got.body, got.headers)
