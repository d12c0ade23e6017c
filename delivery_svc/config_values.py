"""Reading one environment variable of the delivery settings; a bad value raises
:class:`ConfigError` naming the variable."""

from __future__ import annotations

from collections.abc import Mapping

from notify_core.errors import ConfigError
from notify_core.redact import redact_url


def text(env: Mapping[str, str], name: str) -> str | None:
    """The value, stripped; None when unset or blank."""
    raw = (env.get(name) or "").strip()
    return raw or None


def whole(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """A whole number in ``[lo, hi]``; ``default`` when unset."""
    raw = text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def http_url(env: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL without its trailing slash; None when unset."""
    raw = text(env, name)
    if raw is not None and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://; got {redact_url(raw)!r}")
    return raw.rstrip("/") if raw else None


IN_USE = "NOTIFY_EMAIL_PROVIDER or NOTIFY_EMAIL_FALLBACK"
"""How a provider's required setting names what makes it required."""
SMS_IN_USE = "NOTIFY_SMS_PROVIDER or NOTIFY_SMS_FALLBACK"
"""How an SMS provider's required setting names what makes it required."""
