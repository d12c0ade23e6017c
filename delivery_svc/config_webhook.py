"""Outgoing webhook settings (``NOTIFY_WEBHOOK_*``), parsed from the same environment as
the core settings.

``NOTIFY_WEBHOOK_SECRET`` (unset)
    The ``whsec_<base64>`` HMAC secret (Standard Webhooks: 24 to 64 random bytes).
    Several, separated by spaces or commas, each sign every webhook (zero-downtime
    rotation); list the new one first.
``NOTIFY_WEBHOOK_TIMEOUT`` (10)
    Seconds one webhook request may take in all: connect, send, answer.
``NOTIFY_WEBHOOK_ALLOW_PRIVATE`` (false)
    ``true`` allows targets on private, loopback, link-local, ... addresses.
``NOTIFY_WEBHOOK_ALLOWED_HOSTS`` (none)
    Comma-separated host names (``*.corp.example`` for a whole domain), IP addresses and
    CIDRs allowed whatever addresses they resolve to.
``NOTIFY_WEBHOOK_ALLOW_HTTP`` (false)
    ``true`` allows plain ``http://`` targets.

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
from dataclasses import dataclass

from notify_core.constants import (
    WEBHOOK_SECRET_MAX_BYTES,
    WEBHOOK_SECRET_MIN_BYTES,
    WEBHOOK_SECRET_PREFIX,
    WEBHOOK_TIMEOUT_SECONDS,
)
from notify_core.errors import ConfigError

SECRET_VAR = "NOTIFY_WEBHOOK_SECRET"
HOSTS_VAR = "NOTIFY_WEBHOOK_ALLOWED_HOSTS"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    secrets: tuple[str, ...] = ()
    """``whsec_…`` secrets, the current one first; empty means webhooks are not sent."""
    timeout: float = WEBHOOK_TIMEOUT_SECONDS
    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()
    """Normalised: lower-case names (``*.`` prefix for a domain) and CIDRs (``a.b.c.d/n``)."""
    allow_http: bool = False


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


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {env.get(name)!r}")


def _timeout(env: Mapping[str, str]) -> float:
    name = "NOTIFY_WEBHOOK_TIMEOUT"
    raw = (env.get(name) or "").strip()
    if not raw:
        return WEBHOOK_TIMEOUT_SECONDS
    try:
        value = float(raw.removesuffix("s"))
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0.1 <= value <= 300:
        raise ConfigError(f"{name} must be between 0.1 and 300 seconds, got {value}")
    return value


def webhook_settings(env: Mapping[str, str]) -> WebhookSettings:
    """Every ``NOTIFY_WEBHOOK_*`` setting, checked."""
    secrets = tuple(s for s in re.split(r"[\s,]+", env.get(SECRET_VAR) or "") if s)
    for secret in secrets:
        webhook_secret_key(secret)
    return WebhookSettings(
        secrets=secrets,
        timeout=_timeout(env),
        allow_private=_bool(env, "NOTIFY_WEBHOOK_ALLOW_PRIVATE"),
        allowed_hosts=parse_allowed_hosts((env.get(HOSTS_VAR) or "").split(",")),
        allow_http=_bool(env, "NOTIFY_WEBHOOK_ALLOW_HTTP"),
    )
