"""Parsers of the core settings whose values have a shape of their own: rate limits,
over-limit policies, dedup windows, the retry schedule, delivery concurrency, the database
URL, API keys and the namespace. Each raises :class:`ConfigError` naming the variable; the
declarations that use them are in :mod:`notify_core.config`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from notify_core.domain import CHANNELS
from notify_core.errors import ConfigError
from notify_core.ratelimit import DEFAULT_LIMITS, Limit, RateRules
from notify_core.settings_decl import TO, Parser, format_duration, parse_duration, url

_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_DATABASE_URL = url("sqlite", "postgresql+psycopg", "postgresql")


def _entries(raw: str) -> list[tuple[str, str]]:
    """``"a=1,b=2"`` → ``[("a", "1"), ("b", "2")]``; a bare value has the key ``""``."""
    out = []
    for part in raw.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        out.append((key.strip(), value.strip()) if sep else ("", key.strip()))
    return out


def _channel(raw: str, name: str) -> str:
    if raw not in CHANNELS:
        raise ConfigError(f"{name}: unknown channel {raw!r}; one of {', '.join(CHANNELS)}")
    return raw


def _database_url(raw: str, name: str) -> str:
    """An SQLite or PostgreSQL URL; ``postgresql://`` is taken as psycopg."""
    value = _DATABASE_URL.parse(raw, name)
    if value.startswith("postgresql://"):
        return "postgresql+psycopg://" + value.removeprefix("postgresql://")
    return value


def _api_keys(raw: str, name: str) -> frozenset[str]:
    keys = frozenset(k.strip() for k in raw.split(",") if k.strip())
    if any(len(key) < 8 for key in keys):
        raise ConfigError(f"{name}: every key must be at least 8 characters long")
    return keys


def _namespace(raw: str, name: str) -> str:
    if not _NAMESPACE_RE.match(raw.strip()):
        raise ConfigError(f"{name} must be 1-40 letters, digits, '-' or '_'")
    return raw.strip()


def _rate_limits(raw: str, name: str) -> RateRules:
    """``"email=10/1h,push=50/1h,comment:email=3/1h"`` over the default limits."""
    channels: dict[str, Limit] = dict(DEFAULT_LIMITS)
    by_type: dict[tuple[str, str], Limit] = {}
    for key, value in _entries(raw):
        count, slash, window = value.partition("/")
        if not key or not slash or not count.isdigit() or int(count) < 1:
            raise ConfigError(f"{name}: {key}={value!r} must look like channel=10/1h")
        limit = Limit(int(count), parse_duration(window, name))
        type_, colon, channel = key.rpartition(":")
        if colon:
            by_type[(type_, _channel(channel, name))] = limit
        else:
            channels[_channel(channel, name)] = limit
    return RateRules(channels, by_type)


def _over_limit(raw: str, name: str) -> Mapping[str, str]:
    """``"defer"`` (every channel) or ``"push=drop,sms=defer"``."""
    out: dict[str, str] = {}
    for key, value in _entries(raw):
        if value not in ("defer", "drop"):
            raise ConfigError(f"{name}: {value!r} must be defer or drop")
        for channel in CHANNELS if not key else (_channel(key, name),):
            out[channel] = value
    return out


Windows = tuple[float, Mapping[str, float]]
"""The dedup window for every type, and the windows of the types that have their own."""


def dedup(every: float) -> Parser[Windows]:
    """``"1h"`` or ``"1h,comment=10m,chat=0"``; without a bare value ``every`` stays."""

    def parse(raw: str, name: str) -> Windows:
        default = every
        by_type: dict[str, float] = {}
        for key, value in _entries(raw):
            seconds = parse_duration(value, name)
            if key:
                by_type[key] = seconds
            else:
                default = seconds
        return default, by_type

    return Parser(parse, show=_show_dedup)


def _show_dedup(value: Windows) -> str:
    every, by_type = value
    own = [f"{k}={format_duration(v)}" for k, v in by_type.items()]
    return ",".join([format_duration(every), *own])


def _retry_schedule(raw: str, name: str) -> tuple[float, ...]:
    """``"1m,5m,15m"``; ``"none"`` means no retries."""
    if raw.strip().lower() == "none":
        return ()
    return tuple(parse_duration(part, name) for part in raw.strip().split(","))


def _show_schedule(value: tuple[float, ...]) -> str:
    return ",".join(format_duration(v) for v in value) or "none"


def concurrency(defaults: Mapping[str, int]) -> Parser[Mapping[str, int]]:
    """``"high=50,normal=30,low=20"``, any subset over ``defaults``, each 1..10000."""

    def parse(raw: str, name: str) -> Mapping[str, int]:
        out = dict(defaults)
        for key, value in _entries(raw):
            if key not in out:
                raise ConfigError(f"{name}: {key!r} must be {', '.join(defaults)}")
            if not value.isdigit() or not 1 <= int(value) <= 10_000:
                raise ConfigError(f"{name}: {key}={value!r} must be a whole number 1..10000")
            out[key] = int(value)
        return out

    return Parser(parse, f"1{TO}10000 each")


database_url = Parser(_database_url, show=_DATABASE_URL.show)
api_keys = Parser(_api_keys)
namespace = Parser(_namespace)
RATE_RULES = Parser(_rate_limits)
OVER_LIMIT_RULES = Parser(_over_limit)
RETRIES = Parser(_retry_schedule, show=_show_schedule)
