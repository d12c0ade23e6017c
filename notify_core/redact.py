"""Passwords out of messages: every URL Notify prints (configuration errors, start-up
failures, logs, readiness answers) shows ``***`` where its password was.

``redact_url`` takes one URL; ``redact`` scrubs every ``scheme://user:password@`` in a text.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

MASK = "***"
_USERINFO_RE = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^@\s/]*@")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` and its query dropped (it may hold
    one); the rest as written."""
    try:
        parts = urlsplit(url)
        password = parts.password
        _ = parts.port  # a malformed port (or a password taken for one) raises
    except ValueError:
        return "<malformed URL>"
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    if not parts.scheme:
        return redact(url)
    return f"{parts.scheme}://{netloc}{parts.path}"


def redact(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` in it replaced."""
    return _USERINFO_RE.sub(rf"\g<head>{MASK}@", text)


class RedactingFormatter(logging.Formatter):
    """A log formatter that scrubs URL passwords from each line (tracebacks included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
