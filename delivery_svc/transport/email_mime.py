"""The MIME form of an :class:`~delivery_svc.providers.base.EmailMessage`.

``multipart/alternative`` with the text part first and the HTML part last (clients show the
last part they understand), ``Message-ID`` from the message, ``Date``, From/To/Reply-To/
Subject (non-ASCII display names and subjects as RFC 2047 encoded words, international
domains as IDNA) and the extra headers (List-Unsubscribe, ...). Bodies are 7-bit clean
(quoted-printable or base64), so any SMTP server and SES take the bytes as they are.

Header values are checked before anything is built: a CR or LF in one would let a value
start a header of its own, so it is refused with :class:`PermanentDeliveryError`.

A message whose headers are all plain ASCII (addresses ``local@domain`` or ``Name
<local@domain>`` with a name of atoms, an ASCII subject) — most of them — is written
directly, laid out as the stdlib's builder lays it out, at a fifteenth of the cost (a
digest run builds one per user); any other goes through :mod:`email`. The one difference:
quoted-printable lines are broken at 76 characters (RFC 2045), where the stdlib allows 78.
"""

from __future__ import annotations

import binascii
import re
import secrets
from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any

from delivery_svc.providers.base import EmailMessage
from notify_core.constants import EMAIL_MAX_HEADER_LINE
from notify_core.errors import PermanentDeliveryError

_HEADER_NAME_RE = re.compile(r"^[!-9;-~]+$")
"""RFC 5322 field name: printable ASCII except the colon."""
_SET_HERE = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "message-id",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "sender",
        "return-path",
    }
)
"""Headers built from the message's own fields; ``headers`` may not set them again."""
_FOLD_AT = 78
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$")
_PLAIN_NAME = re.compile(rf"^{_ATOM}(?: {_ATOM})*$")
_NAMED = re.compile(r"^(?P<name>[^<>]*?)\s*<(?P<address>[^<>]+)>$")


class _Policy(EmailPolicy):
    """``policy.SMTP`` (CRLF), except that an ASCII header value is written as it is.

    The stdlib folder turns a long token that does not fit on one line, such as the URL in
    ``List-Unsubscribe``, into encoded words, which mail clients then cannot follow. ASCII
    values are folded only at the spaces they already have; others take the stdlib path.
    """

    def fold(self, name: str, value: Any) -> str:
        text = str(value)
        if text.isascii():
            return _fold_ascii(name, text, self.linesep)
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: Any) -> bytes:
        text = str(value)
        if text.isascii():
            return _fold_ascii(name, text, self.linesep).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy().clone(linesep="\r\n", cte_type="7bit")
"""The policy every message is built with: SMTP line endings, 7-bit clean bodies."""
_PARSE_POLICY = email_policy.SMTP


def _fold_ascii(name: str, value: str, linesep: str) -> str:
    words = value.split(" ")
    lines: list[str] = []
    line = f"{name}:"
    for word in words:
        if word and line != f"{name}:" and len(line) + 1 + len(word) > _FOLD_AT:
            lines.append(line)
            line = ""
        line = f"{line} {word}"
    lines.append(line)
    return linesep.join(lines) + linesep


def check_header_value(provider: str, name: str, value: str) -> None:
    """Refuse (permanently) a value that could break out of its header or its line."""
    if "\r" in value or "\n" in value:
        raise PermanentDeliveryError(provider, f"header {name} contains a line break")
    if "\x00" in value:
        raise PermanentDeliveryError(provider, f"header {name} contains a NUL character")
    if value.isascii() and any(
        len(word) + len(name) + 2 > EMAIL_MAX_HEADER_LINE for word in value.split(" ")
    ):
        raise PermanentDeliveryError(
            provider, f"header {name} has a word longer than a header line may be"
        )


def parse_address(provider: str, field: str, raw: str) -> Address:
    """One mailbox (``Name <local@domain>`` or ``local@domain``); the domain as IDNA.

    A value that is not exactly one well-formed address, or whose local part is not ASCII
    (that needs SMTPUTF8, which we do not ask of servers), is refused for good.
    """
    check_header_value(provider, field, raw)
    try:
        header = _PARSE_POLICY.header_factory("To", raw)
        addresses: tuple[Address, ...] = header.addresses
        defects: tuple[Exception, ...] = header.defects
    except Exception:
        raise PermanentDeliveryError(provider, f"{field}: {raw!r} is not an address") from None
    if len(addresses) != 1 or defects:
        raise PermanentDeliveryError(provider, f"{field}: {raw!r} is not one address")
    address: Address = addresses[0]
    local, domain = address.username, address.domain
    if not local or not domain or " " in domain:
        raise PermanentDeliveryError(provider, f"{field}: {raw!r} is not an address")
    if not local.isascii():
        raise PermanentDeliveryError(
            provider, f"{field}: {raw!r} has a non-ASCII local part (SMTPUTF8 is not used)"
        )
    try:
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise PermanentDeliveryError(provider, f"{field}: {domain!r} is not a domain") from None
    return Address(display_name=address.display_name, username=local, domain=ascii_domain)


def _plain(raw: str) -> tuple[str, str] | None:
    """``(as written in a header, bare address)`` of an address that needs no parsing: a
    plain ``local@domain``, or ``Name <local@domain>`` with a name of atoms; else None."""
    raw = raw.strip()
    if _PLAIN_ADDRESS.match(raw):
        return raw, raw
    named = _NAMED.match(raw)
    if named is None or not _PLAIN_ADDRESS.match(named["address"]):
        return None
    name, address = named["name"], named["address"]
    if not name:
        return address, address
    return (f"{name} <{address}>", address) if _PLAIN_NAME.match(name) else None


def envelope_address(provider: str, field: str, raw: str) -> str:
    """The bare ``local@domain`` of ``raw``, as SMTP's MAIL FROM / RCPT TO take it."""
    check_header_value(provider, field, raw)
    plain = _plain(raw)
    if plain is not None:
        return plain[1]
    return parse_address(provider, field, raw).addr_spec


def message_id(provider: str, raw: str) -> str:
    """``raw`` as a Message-ID: ``<left@right>``, angle brackets added when missing."""
    check_header_value(provider, "Message-ID", raw)
    value = raw.strip()
    if not (value.startswith("<") and value.endswith(">")):
        value = f"<{value}>"
    inner = value[1:-1]
    if "@" not in inner or any(c in inner for c in "<> \t") or not inner.isascii():
        raise PermanentDeliveryError(provider, f"Message-ID {raw!r} is not <id@domain>")
    return value


def extra_headers(message: EmailMessage, *, provider: str) -> list[tuple[str, str]]:
    """``message.headers``, checked: valid names, no line breaks, none of ours overridden."""
    out: list[tuple[str, str]] = []
    for name, value in message.headers.items():
        if not _HEADER_NAME_RE.match(name):
            raise PermanentDeliveryError(provider, f"header name {name!r} is not valid")
        if name.lower() in _SET_HERE:
            raise PermanentDeliveryError(provider, f"header {name} is set from the message")
        check_header_value(provider, name, value)
        out.append((name, value))
    return out


def build_mime(message: EmailMessage, *, provider: str, now: datetime | None = None) -> MimeMessage:
    """The message as a stdlib ``EmailMessage`` (policy SMTP, 7-bit); raises
    :class:`PermanentDeliveryError` when a header value or address is unusable."""
    sender = parse_address(provider, "sender", message.sender)
    to = parse_address(provider, "to", message.to)
    reply_to = parse_address(provider, "reply_to", message.reply_to) if message.reply_to else None
    check_header_value(provider, "Subject", message.subject)
    extra = extra_headers(message, provider=provider)

    mime = MimeMessage(policy=POLICY)
    mime["Message-ID"] = message_id(provider, message.message_id)
    mime["Date"] = format_datetime(now or datetime.now(UTC))
    mime["From"] = sender
    mime["To"] = to
    if reply_to is not None:
        mime["Reply-To"] = reply_to
    mime["Subject"] = message.subject
    for name, value in extra:
        mime[name] = value
    mime.set_content(message.text or " ")
    mime.add_alternative(message.html, subtype="html")
    return mime


def mime_bytes(message: EmailMessage, *, provider: str, now: datetime | None = None) -> bytes:
    """:func:`build_mime`, serialised with CRLF line endings (ASCII only)."""
    written = _plain_mime(message, provider, now)
    if written is not None:
        return written
    return build_mime(message, provider=provider, now=now).as_bytes(policy=POLICY)


def _body(text: str) -> tuple[str, str]:
    """A text part's transfer encoding and its encoded form (CRLF line endings): 7bit when
    it is ASCII in lines of at most 78 characters, as the stdlib decides; otherwise
    quoted-printable (the stdlib takes base64 instead when that is shorter)."""
    lines = text.encode("utf-8").splitlines()
    body = b"\n".join(lines) + b"\n"
    if body.isascii() and max(map(len, lines), default=0) <= _FOLD_AT:
        return "7bit", body.decode("ascii").replace("\n", "\r\n")
    encoded = binascii.b2a_qp(body, istext=True).decode("ascii")
    return "quoted-printable", encoded.replace("\n", "\r\n")


def _plain_mime(message: EmailMessage, provider: str, now: datetime | None) -> bytes | None:
    """The message written directly when its headers are plain ASCII, checked as
    :func:`build_mime` checks them; None for any other (the stdlib builds it)."""
    fields = [("sender", message.sender), ("to", message.to)]
    if message.reply_to:
        fields.append(("reply_to", message.reply_to))
    written = []
    for field, raw in fields:
        check_header_value(provider, field, raw)
        plain = _plain(raw)
        if plain is None:
            return None
        written.append(plain[0])
    check_header_value(provider, "Subject", message.subject)
    extra = extra_headers(message, provider=provider)
    if not message.subject.isascii() or not all(v.isascii() for _, v in extra):
        return None
    boundary = f"==============={secrets.randbelow(10**19):019d}=="
    headers = [
        ("Message-ID", message_id(provider, message.message_id)),
        ("Date", format_datetime(now or datetime.now(UTC))),
        ("From", written[0]),
        ("To", written[1]),
        *([("Reply-To", written[2])] if message.reply_to else []),
        ("Subject", message.subject),
        *extra,
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    out = [_fold_ascii(name, value, "\r\n") for name, value in headers]
    out.append("\r\n")
    # the stdlib's layout: MIME-Version repeated in the part added as an alternative
    for subtype, text, version in (
        ("plain", message.text or " ", ""),
        ("html", message.html, "MIME-Version: 1.0\r\n"),
    ):
        encoding, body = _body(text)
        out.append(
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n{version}\r\n{body}\r\n"
        )
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode("ascii")
