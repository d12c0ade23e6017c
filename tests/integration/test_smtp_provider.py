"""SmtpProvider against a real SMTP server (aiosmtpd, :class:`~tests.support.smtp.Recorder`)
started by each test."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from delivery_svc.providers.base import EmailMessage
from delivery_svc.providers.smtp import SmtpProvider
from tests.support.outcomes import permanent, taken, transient
from tests.support.procs import free_port
from tests.support.smtp import CountingController, Recorder, start_recorder

USER, PASSWORD = "notify", "s3cret-password"


@pytest.fixture
def server() -> Iterator[tuple[Recorder, CountingController]]:
    recorder = Recorder()
    controller = start_recorder(recorder, free_port())
    yield recorder, controller
    controller.stop()


def _message(to: str = "alice@example.com", n: int = 0, **kw: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "to": to,
        "sender": "Notify <no-reply@notify.example.com>",
        "subject": f"Your report #{n} is ready",
        "html": f"<p>Report <b>{n}</b> is ready.</p>",
        "text": f"Report {n} is ready.",
        "message_id": f"<n{n}.email@notify.example.com>",
        "idempotency_key": f"n{n}:email",
        "headers": {
            "List-Unsubscribe": "<https://notify.example.com/u?token=abc>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    fields.update(kw)
    return EmailMessage(**fields)


def _parsed(envelope: Envelope) -> email.message.EmailMessage:
    raw = envelope.original_content
    assert isinstance(raw, bytes)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


async def test_a_message_arrives_as_multipart_alternative_with_its_headers(
    server: tuple[Recorder, CountingController],
) -> None:
    recorder, controller = server
    provider = SmtpProvider(host="127.0.0.1", port=controller.port, starttls="never")
    message = _message(subject="Grüße aus Köln", html="<p>Hallo <b>Jürgen</b></p>")
    try:
        result = await provider.send(message)
    finally:
        await provider.close()

    assert result.provider == "smtp"
    assert result.provider_id == "<n0.email@notify.example.com>"
    [envelope] = recorder.envelopes
    assert envelope.mail_from == "no-reply@notify.example.com"
    assert envelope.rcpt_tos == ["alice@example.com"]
    msg = _parsed(envelope)
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert msg["Subject"] == "Grüße aus Köln"
    assert msg["Message-ID"] == "<n0.email@notify.example.com>"
    assert msg["From"].addresses[0].display_name == "Notify"
    assert msg["List-Unsubscribe"] == "<https://notify.example.com/u?token=abc>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Date"] is not None
    html = msg.get_body(("html",))
    text = msg.get_body(("plain",))
    assert html is not None and "Jürgen" in html.get_content()
    assert text is not None and text.get_content().strip() == "Report 0 is ready."


async def test_200_concurrent_sends_share_a_pool_of_4_connections(
    server: tuple[Recorder, CountingController],
) -> None:
    recorder, controller = server
    provider = SmtpProvider(host="127.0.0.1", port=controller.port, starttls="never", pool_size=4)
    try:
        results = await asyncio.gather(*(provider.send(_message(n=i)) for i in range(200)))
        assert provider.open_connections <= 4
    finally:
        await provider.close()

    assert len(results) == 200
    assert len(recorder.envelopes) == 200
    subjects = {_parsed(e)["Subject"] for e in recorder.envelopes}
    assert subjects == {f"Your report #{i} is ready" for i in range(200)}
    assert 1 <= recorder.connections <= 4


async def test_sequential_sends_reuse_one_connection(
    server: tuple[Recorder, CountingController],
) -> None:
    recorder, controller = server
    provider = SmtpProvider(host="127.0.0.1", port=controller.port, starttls="never")
    try:
        for i in range(5):
            taken(await provider.send(_message(n=i)))
    finally:
        await provider.close()
    assert len(recorder.envelopes) == 5
    assert recorder.connections == 1


async def test_a_refused_recipient_is_permanent_and_the_connection_stays_usable(
    server: tuple[Recorder, CountingController],
) -> None:
    recorder, controller = server
    provider = SmtpProvider(host="127.0.0.1", port=controller.port, starttls="never", pool_size=1)
    try:
        info = permanent(await provider.send(_message(to="nobody@example.com")))
        assert "550" in info.message and "RCPT" in info.message
        assert info.provider == "smtp"

        permanent(await provider.send(_message(to="spam@example.com")), match="554")

        taken(await provider.send(_message(to="bob@example.com")))
    finally:
        await provider.close()
    assert [e.rcpt_tos for e in recorder.envelopes] == [["bob@example.com"]]
    assert recorder.connections == 1


async def test_a_4xx_answer_is_transient(server: tuple[Recorder, CountingController]) -> None:
    recorder, controller = server
    provider = SmtpProvider(host="127.0.0.1", port=controller.port, starttls="never")
    try:
        transient(await provider.send(_message(to="later@example.com")), match="451")
    finally:
        await provider.close()
    assert recorder.envelopes == []


async def test_no_server_listening_is_transient() -> None:
    provider = SmtpProvider(host="127.0.0.1", port=free_port(), starttls="never")
    try:
        transient(await provider.send(_message()), match="connecting")
    finally:
        await provider.close()


async def test_a_header_injection_is_refused_before_connecting() -> None:
    provider = SmtpProvider(host="127.0.0.1", port=free_port(), starttls="never")
    try:
        permanent(
            await provider.send(_message(subject="Hi\r\nBcc: victim@example.com")),
            match="line break",
        )
    finally:
        await provider.close()


async def test_a_restarted_server_is_reconnected_to_transparently() -> None:
    recorder = Recorder()
    port = free_port()
    controller = start_recorder(recorder, port)
    provider = SmtpProvider(host="127.0.0.1", port=port, starttls="never", pool_size=1)
    try:
        taken(await provider.send(_message(n=1)))
        assert provider.open_connections == 1
        # Stop and start again without letting the client's loop run: its pooled
        # connection still looks open and dies at the first command of the next send.
        controller.stop()
        controller = start_recorder(recorder, port)
        taken(await provider.send(_message(n=2)))
        taken(await provider.send(_message(n=3)))
    finally:
        await provider.close()
        controller.stop()
    subjects = [_parsed(e)["Subject"] for e in recorder.envelopes]
    assert subjects == [f"Your report #{i} is ready" for i in (1, 2, 3)]
    assert recorder.connections == 1  # one new connection after the restart, then reused


# --- STARTTLS and AUTH -----------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, cert_pem


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # let the server answer 235 or 535


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Recorder, CountingController, ssl.SSLContext]]:
    cert_file, key_file, cert_pem = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = ssl.create_default_context(cadata=cert_pem.decode())
    recorder = Recorder()
    controller = start_recorder(
        recorder,
        free_port(),
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
    )
    yield recorder, controller, client_ctx
    controller.stop()


@pytest.mark.parametrize("mode", ["auto", "always"])
async def test_starttls_and_auth(
    tls_server: tuple[Recorder, CountingController, ssl.SSLContext], mode: Any
) -> None:
    recorder, controller, client_ctx = tls_server
    provider = SmtpProvider(
        host="127.0.0.1",
        port=controller.port,
        starttls=mode,
        username=USER,
        password=PASSWORD,
        tls_context=client_ctx,
    )
    try:
        taken(await provider.send(_message(n=1)))
        taken(await provider.send(_message(n=2)))
    finally:
        await provider.close()
    assert recorder.sessions == [{"tls": True, "authenticated": True}] * 2
    assert recorder.connections == 1


async def test_a_wrong_password_is_transient(
    tls_server: tuple[Recorder, CountingController, ssl.SSLContext],
) -> None:
    recorder, controller, client_ctx = tls_server
    provider = SmtpProvider(
        host="127.0.0.1",
        port=controller.port,
        starttls="always",
        username=USER,
        password="wrong",
        tls_context=client_ctx,
    )
    try:
        transient(await provider.send(_message()), match="authentication refused: 535")
    finally:
        await provider.close()
    assert recorder.envelopes == []


async def test_an_untrusted_certificate_is_refused(
    tls_server: tuple[Recorder, CountingController, ssl.SSLContext],
) -> None:
    _, controller, _ = tls_server
    provider = SmtpProvider(host="127.0.0.1", port=controller.port, starttls="always")
    try:
        transient(await provider.send(_message()), match=r"(?i)certificate")
    finally:
        await provider.close()


async def test_starttls_never_against_a_server_requiring_it_is_transient(
    tls_server: tuple[Recorder, CountingController, ssl.SSLContext],
) -> None:
    recorder, controller, _ = tls_server
    provider = SmtpProvider(host="127.0.0.1", port=controller.port, starttls="never")
    try:
        transient(await provider.send(_message()), match="530")
    finally:
        await provider.close()
    assert recorder.envelopes == []
