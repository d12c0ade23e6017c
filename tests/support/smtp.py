"""SMTP servers (aiosmtpd) that receive what a node sends, and the ``smtp`` fixture.

:class:`Inbox` keeps every message and can refuse some with 451; :class:`CountingInbox`
only counts them, and takes a while over each, for the tests that kill or cut a node
while it sends; :class:`Recorder` answers per recipient the way mail servers refuse, and
:class:`CountingController` counts the connections made to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from delivery_svc.config_email import EmailSettings
from delivery_svc.providers.smtp import SmtpSettings
from notify_app.settings import NodeSettings
from tests.support.procs import free_port


class Inbox:
    """An aiosmtpd handler keeping what it receives; it can refuse the next ``fail`` mails
    with 451 (try again later), and run ``before_accepting`` once before its next 250."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.fail = 0
        self.refused = 0
        self.before_refusing: Callable[[], object] | None = None
        self.before_accepting: Callable[[], object] | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.fail > 0:
            self.fail -= 1
            self.refused += 1
            if self.before_refusing is not None:
                await asyncio.to_thread(self.before_refusing)
            return "451 4.3.0 try again later"
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        if self.before_accepting is not None:
            once, self.before_accepting = self.before_accepting, None
            await asyncio.to_thread(once)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class CountingInbox:
    """An aiosmtpd handler counting the messages it receives by recipient and Message-ID.
    A message counts as arrived once its DATA is read, before the server answers 250 (a
    sender that dies then has delivered it without knowing); the server then takes
    ``delay`` seconds before it answers."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._lock = threading.Lock()  # the controller's thread writes, the test reads
        self.by_user: dict[str, Counter[str]] = {}
        """Message-IDs received, by the part of the ``To`` address before ``@``."""
        self._parser = BytesHeaderParser(policy=SMTP_POLICY)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        headers = self._parser.parsebytes(raw)
        message_id = str(headers["Message-ID"] or "").strip()
        user = str(headers["To"]).split("@")[0]
        with self._lock:
            self.by_user.setdefault(user, Counter())[message_id] += 1
        await asyncio.sleep(self.delay)
        return "250 OK"

    def counts(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        with self._lock:
            return sum(self.by_user.values(), Counter())

    def received(self) -> int:
        """How many messages arrived."""
        with self._lock:
            return sum(sum(c.values()) for c in self.by_user.values())


class Recorder:
    """Handler: refuses some recipients, keeps every accepted envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.sessions: list[dict[str, Any]] = []
        self.connections = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if any(r.startswith("later@") for r in envelope.rcpt_tos):
            return "451 4.3.0 Mail server temporarily rejected message"
        if any(r.startswith("spam@") for r in envelope.rcpt_tos):
            return "554 5.7.1 Message refused as spam"
        self.envelopes.append(envelope)
        self.sessions.append(
            {"tls": session.ssl is not None, "authenticated": session.authenticated}
        )
        return "250 2.0.0 Ok: queued"


class CountingController(Controller):
    def __init__(self, recorder: Recorder, port: int, **kwargs: Any) -> None:
        super().__init__(recorder, hostname="127.0.0.1", port=port, **kwargs)
        self.recorder = recorder

    def factory(self) -> SMTP:
        self.recorder.connections += 1  # one SMTP instance per accepted connection
        return super().factory()  # type: ignore[no-untyped-call,no-any-return]


def start_recorder(recorder: Recorder, port: int, **kwargs: Any) -> CountingController:
    controller = CountingController(recorder, port, **kwargs)
    controller.start()
    recorder.connections = 0  # start() makes one probe connection of its own
    return controller


@contextlib.contextmanager
def listening(handler: object) -> Iterator[int]:
    """An SMTP server with ``handler`` on a free port of 127.0.0.1 (yielded)."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with listening(inbox) as port:
        yield inbox, port


def with_smtp(settings: NodeSettings, port: int, **changes: Any) -> dict[str, Any]:
    mail = EmailSettings(
        sender="Notify <n@x.test>",
        providers={"smtp": SmtpSettings(host="127.0.0.1", port=port, starttls="never")},
    )
    return {"email": mail, **changes}
