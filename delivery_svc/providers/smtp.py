"""Email over SMTP (``aiosmtplib``), on a small pool of persistent connections.

The pool holds ``pool_size`` slots; a send takes one (waiting while all are busy), makes
sure its connection is up (connect, EHLO, STARTTLS, AUTH as configured), runs one
MAIL/RCPT/DATA transaction and gives the slot back with the connection still open, so
hundreds of concurrent sends share a handful of connections.

A connection can die while idle (the server restarted, or timed it out). That is noticed
at the first command of the next transaction, before any of the message was sent, so the
slot reconnects and that transaction is tried once more, transparently.

Outcomes: a 5xx answer to RCPT or DATA refuses this address or this content for good (not
retryable). A 4xx answer, a timeout, a lost or refused connection, and whatever refuses
*us* rather than the message (a failed STARTTLS or AUTH, 530 "authenticate first", a
refused MAIL FROM: fixing the settings lets the message through) are retryable. Inside,
the transaction raises :class:`TransientDeliveryError` / :class:`PermanentDeliveryError`;
``send`` turns them into the :class:`Outcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

import aiosmtplib

from delivery_svc.providers.base import EmailMessage, EmailProviderSpec, Outcome
from delivery_svc.transport.email_mime import envelope_address, message_id, mime_bytes
from notify_core.constants import (
    SMTP_CONNECT_TIMEOUT_SECONDS,
    SMTP_POOL_DEFAULT,
    SMTP_POOL_MAX,
    SMTP_SEND_TIMEOUT_SECONDS,
    SMTP_STARTTLS_MODES,
)
from notify_core.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from notify_core.settings_decl import RAW, TEXT, Setting, SettingsGroup, choice, whole

StartTls = Literal["auto", "always", "never"]
_START_TLS: dict[str, bool | None] = {"auto": None, "always": True, "never": False}
_CLOSE_WAIT_SECONDS = 5.0
_SESSION_CODES = frozenset({421, 530, 534, 535, 538})
"""Answers about the session (closing, TLS or AUTH required), not about the message."""


@dataclass(eq=False)
class _Slot:
    """One place in the pool; holds at most one connection."""

    client: aiosmtplib.SMTP | None = None

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class SmtpProvider:
    """:class:`~delivery_svc.providers.base.EmailProvider` for an SMTP relay."""

    name = "smtp"

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 25,
        username: str | None = None,
        password: str | None = None,
        starttls: StartTls = "auto",
        pool_size: int = SMTP_POOL_DEFAULT,
        timeout: float = SMTP_SEND_TIMEOUT_SECONDS,
        connect_timeout: float = SMTP_CONNECT_TIMEOUT_SECONDS,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if starttls not in _START_TLS:
            raise ValueError(f"starttls must be auto, always or never, not {starttls!r}")
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self._slots: list[_Slot] = [_Slot() for _ in range(pool_size)]
        self._idle: asyncio.LifoQueue[_Slot] = asyncio.LifoQueue()
        for slot in self._slots:
            self._idle.put_nowait(slot)
        self._closed = False

    @property
    def pool_size(self) -> int:
        return len(self._slots)

    @property
    def open_connections(self) -> int:
        """Connections the pool holds open now (for health and tests)."""
        return sum(1 for s in self._slots if s.client is not None and s.client.is_connected)

    async def send(self, message: EmailMessage) -> Outcome:
        try:
            return await self._send(message)
        except DeliveryError as exc:
            return Outcome.refused(exc)

    async def _send(self, message: EmailMessage) -> Outcome:
        if self._closed:
            raise TransientDeliveryError(self.name, "the SMTP provider is closed")
        data = mime_bytes(message, provider=self.name)
        mail_from = envelope_address(self.name, "sender", message.sender)
        rcpt_to = envelope_address(self.name, "to", message.to)
        mid = message_id(self.name, message.message_id)

        slot = await self._idle.get()
        try:
            async with asyncio.timeout(self._timeout):
                await self._transaction(slot, mail_from, rcpt_to, data)
        except TimeoutError:
            slot.drop()
            raise TransientDeliveryError(
                self.name, f"no answer from {self.host}:{self.port} within {self._timeout:g}s"
            ) from None
        except asyncio.CancelledError:
            slot.drop()  # cancelled mid-transaction: the connection's state is unknown
            raise
        finally:
            self._idle.put_nowait(slot)
        return Outcome.sent(self.name, mid)

    async def _transaction(self, slot: _Slot, mail_from: str, rcpt_to: str, data: bytes) -> None:
        client = slot.client
        reused = client is not None and client.is_connected
        if client is None or not reused:
            client = await self._connect(slot)
        try:
            try:
                await client.mail(mail_from)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                if not reused:
                    raise
                # It died while idle: nothing of this message was sent yet. Once more.
                client = await self._connect(slot)
                await client.mail(mail_from)
            except aiosmtplib.SMTPResponseException as exc:
                if not (reused and exc.code == 421):
                    raise
                client = await self._connect(slot)  # the server timed the idle session out
                await client.mail(mail_from)
            await client.rcpt(rcpt_to)
            await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(slot, exc.code)
            raise self._refused(exc, rcpt_to) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            slot.drop()
            raise TransientDeliveryError(
                self.name, f"{self.host}:{self.port}: {_describe(exc)}"
            ) from None

    def _refused(self, exc: aiosmtplib.SMTPResponseException, rcpt_to: str) -> DeliveryError:
        stage = {
            aiosmtplib.SMTPSenderRefused: "MAIL FROM",
            aiosmtplib.SMTPRecipientRefused: f"RCPT TO <{rcpt_to}>",
            aiosmtplib.SMTPDataError: "DATA",
        }.get(type(exc), "the transaction")
        text = f"{exc.code} {exc.message} (answer to {stage})"
        if 500 <= exc.code < 600 and stage != "MAIL FROM" and exc.code not in _SESSION_CODES:
            return PermanentDeliveryError(self.name, text)
        return TransientDeliveryError(self.name, text)

    async def _reset(self, slot: _Slot, code: int) -> None:
        """After a refusal: RSET, so the connection is clean for the next message."""
        client = slot.client
        if client is None or code == 421 or not client.is_connected:
            slot.drop()
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            slot.drop()

    async def _connect(self, slot: _Slot) -> aiosmtplib.SMTP:
        slot.drop()
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self._username,
            password=self._password,
            start_tls=_START_TLS[self._starttls],
            tls_context=self._tls_context,
            local_hostname=self._local_hostname,
            timeout=self._connect_timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise TransientDeliveryError(
                self.name, f"connecting to {self.host}:{self.port}: {_describe(exc)}"
            ) from None
        except BaseException:
            client.close()
            raise
        client.timeout = self._timeout
        slot.client = client
        return client

    async def close(self) -> None:
        """Say QUIT on every pooled connection (waiting briefly for sends in flight)."""
        self._closed = True
        taken: list[_Slot] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_WAIT_SECONDS):
                while len(taken) < len(self._slots):
                    taken.append(await self._idle.get())
        for slot in self._slots:
            client = slot.client
            if client is not None and client.is_connected and slot in taken:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.quit(), _CLOSE_WAIT_SECONDS)
            slot.drop()
        for slot in taken:
            self._idle.put_nowait(slot)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"authentication refused: {exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPException):
        return exc.message
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    return f"{type(exc).__name__}: {exc}"


# --- Settings ---------------------------------------------------------------------------

HOST = Setting("NOTIFY_SMTP_HOST", TEXT, "localhost", "host of the SMTP server")
PORT = Setting("NOTIFY_SMTP_PORT", whole(1, 65535), 25, "port of the SMTP server")
USERNAME: Setting[str | None] = Setting(
    "NOTIFY_SMTP_USERNAME",
    TEXT,
    None,
    "SMTP AUTH user; set with the password or not at all",
    shown_default="unset: no AUTH",
)
PASSWORD: Setting[str | None] = Setting(
    "NOTIFY_SMTP_PASSWORD",
    RAW,
    None,
    "SMTP AUTH password; set with the user or not at all",
    shown_default="unset: no AUTH",
    secret=True,
)
STARTTLS = Setting(
    "NOTIFY_SMTP_STARTTLS",
    choice(*SMTP_STARTTLS_MODES),
    "auto",
    "`auto` upgrades when the server offers STARTTLS, `always` requires it, `never` stays in "
    "plain text",
)
POOL = Setting(
    "NOTIFY_SMTP_POOL",
    whole(1, SMTP_POOL_MAX),
    SMTP_POOL_DEFAULT,
    "SMTP connections kept open and shared by every send",
)

SETTINGS = SettingsGroup(
    "delivery_svc/providers/smtp.py", (HOST, PORT, USERNAME, PASSWORD, STARTTLS, POOL)
)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """``NOTIFY_SMTP_*``, as read (defaults from the declarations above)."""

    host: str = HOST.default
    port: int = PORT.default
    username: str | None = USERNAME.default
    password: str | None = field(default=PASSWORD.default, repr=False)
    starttls: str = STARTTLS.default
    pool: int = POOL.default


def read_settings(env: Mapping[str, str], in_use: bool) -> SmtpSettings:
    """``NOTIFY_SMTP_*``, checked (none is required; user and password go together)."""
    username, password = USERNAME.read(env), PASSWORD.read(env)
    if username and not password:
        raise ConfigError("NOTIFY_SMTP_PASSWORD is required when NOTIFY_SMTP_USERNAME is set")
    if password and not username:
        raise ConfigError("NOTIFY_SMTP_USERNAME is required when NOTIFY_SMTP_PASSWORD is set")
    return SmtpSettings(
        HOST.read(env), PORT.read(env), username, password, STARTTLS.read(env), POOL.read(env)
    )


def build(smtp: SmtpSettings) -> SmtpProvider:
    return SmtpProvider(
        host=smtp.host,
        port=smtp.port,
        username=smtp.username,
        password=smtp.password,
        starttls=cast(StartTls, smtp.starttls),
        pool_size=smtp.pool,
    )


PROVIDER = EmailProviderSpec(
    name="smtp",
    settings=SETTINGS,
    settings_type=SmtpSettings,
    read_settings=read_settings,
    build=build,
)
