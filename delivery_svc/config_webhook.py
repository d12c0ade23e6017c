"""Outgoing webhook settings (``NOTIFY_WEBHOOK_*``), declared and parsed here from the same
environment as the core settings.

The secret is optional at start, because most deployments send no webhooks: without it a
webhook delivery fails permanently with a message naming ``NOTIFY_WEBHOOK_SECRET`` (an
unsigned webhook is never sent). A secret that is set but malformed fails at start.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from notify_core.constants import (
    WEBHOOK_SECRET_MAX_BYTES,
    WEBHOOK_SECRET_MIN_BYTES,
    WEBHOOK_SECRET_PREFIX,
    WEBHOOK_TIMEOUT_SECONDS,
)
from notify_core.errors import ConfigError
from notify_core.settings_decl import FLAG, Parser, Setting, SettingsGroup, items, seconds

SECRET_VAR = "NOTIFY_WEBHOOK_SECRET"
HOSTS_VAR = "NOTIFY_WEBHOOK_ALLOWED_HOSTS"

_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")


def webhook_secret_key(secret: str, name: str = SECRET_VAR) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; :class:`ConfigError` naming ``name``."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ConfigError(f"{name} must look like {WEBHOOK_SECRET_PREFIX}<base64>")
    encoded = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{name}: the part after {WEBHOOK_SECRET_PREFIX} must be standard base64"
        ) from None
    if not WEBHOOK_SECRET_MIN_BYTES <= len(key) <= WEBHOOK_SECRET_MAX_BYTES:
        raise ConfigError(
            f"{name} must hold {WEBHOOK_SECRET_MIN_BYTES} to {WEBHOOK_SECRET_MAX_BYTES} "
            f"random bytes (Standard Webhooks), got {len(key)}"
        )
    return key


def parse_allowed_hosts(entries: Iterable[str], name: str = HOSTS_VAR) -> tuple[str, ...]:
    """Host names, ``*.domain`` patterns, IPs and CIDRs, normalised; ConfigError if malformed."""
    out: list[str] = []
    for raw in entries:
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            out.append(str(ipaddress.ip_network(entry.strip("[]"), strict=False)))
            continue
        except ValueError:
            pass
        if "/" in entry or not _HOST_RE.match(entry) or len(entry) > 253:
            raise ConfigError(
                f"{name}: {raw.strip()!r} is neither a host name (ASCII; punycode for "
                "international names), a *.domain pattern, an IP address nor a CIDR"
            )
        out.append(entry)
    return tuple(out)


def _secret(secret: str, name: str) -> str:
    webhook_secret_key(secret, name)
    return secret


def _hosts(raw: str, name: str) -> tuple[str, ...]:
    return parse_allowed_hosts(raw.split(","), name)


SECRET: Setting[tuple[str, ...]] = Setting(
    SECRET_VAR,
    items(_secret, r"[\s,]+"),
    (),
    "`whsec_<base64>` secret(s) that sign webhooks (24 to 64 bytes; several, new first, for "
    "rotation); unset: webhook deliveries fail naming it",
    shown_default="unset",
    secret=True,
)
TIMEOUT = Setting(
    "NOTIFY_WEBHOOK_TIMEOUT",
    seconds(0.1, 300),
    WEBHOOK_TIMEOUT_SECONDS,
    "seconds one webhook request may take in all: connect, send, answer",
)
ALLOW_PRIVATE = Setting(
    "NOTIFY_WEBHOOK_ALLOW_PRIVATE",
    FLAG,
    False,
    "`true` allows webhook targets on private, loopback and link-local addresses",
)
ALLOWED_HOSTS: Setting[tuple[str, ...]] = Setting(
    HOSTS_VAR,
    Parser(_hosts),
    (),
    "comma-separated host names (`*.corp.example` for a whole domain), IPs and CIDRs allowed "
    "whatever they resolve to",
    shown_default="none",
)
ALLOW_HTTP = Setting(
    "NOTIFY_WEBHOOK_ALLOW_HTTP",
    FLAG,
    False,
    "`true` allows plain `http://` webhook URLs, when saved in preferences and when sent",
)

WEBHOOK = SettingsGroup(
    "delivery_svc/config_webhook.py", (SECRET, TIMEOUT, ALLOW_PRIVATE, ALLOWED_HOSTS, ALLOW_HTTP)
)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    secrets: tuple[str, ...] = field(default=SECRET.default, repr=False)
    """``whsec_…`` secrets, the current one first; empty means webhooks are not sent."""
    timeout: float = TIMEOUT.default
    allow_private: bool = ALLOW_PRIVATE.default
    allowed_hosts: tuple[str, ...] = ALLOWED_HOSTS.default
    """Normalised: lower-case names (``*.`` prefix for a domain) and CIDRs (``a.b.c.d/n``)."""
    allow_http: bool = ALLOW_HTTP.default


def webhook_settings(env: Mapping[str, str]) -> WebhookSettings:
    """Every ``NOTIFY_WEBHOOK_*`` setting, checked."""
    return WebhookSettings(
        secrets=SECRET.read(env),
        timeout=TIMEOUT.read(env),
        allow_private=ALLOW_PRIVATE.read(env),
        allowed_hosts=ALLOWED_HOSTS.read(env),
        allow_http=ALLOW_HTTP.read(env),
    )
