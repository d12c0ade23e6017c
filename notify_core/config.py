"""The core's configuration from the environment (a ``.env`` file may set the same names).

Every setting is read and checked once, at start; a missing or malformed one raises
:class:`ConfigError` naming the variable. :class:`Settings` holds what the core and more
than one service use; a service's own settings (email providers, webhooks, digests) are
parsed beside that service from the same :func:`read_environment`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values

from notify_core.config_names import DeclaredEnv, check_known
from notify_core.constants import (
    EDGE_PROCESSES_MAX,
    HTTP_HEADER_TIMEOUT_SECONDS,
    HTTP_IDLE_TIMEOUT_SECONDS,
    MAX_CONNECTIONS_PER_USER_DEFAULT,
    PRESENCE_TTL_SECONDS,
    SEND_LEASE_SECONDS,
    SHUTDOWN_GRACE_SECONDS,
)
from notify_core.domain import CHANNELS, Priority
from notify_core.errors import ConfigError
from notify_core.ratelimit import DEFAULT_LIMITS, Limit, RateRules
from notify_core.redact import redact_url

N = TypeVar("N", int, float)

_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

DELIVERY_CONCURRENCY: Mapping[str, int] = {Priority.HIGH: 50, Priority.NORMAL: 30, Priority.LOW: 20}
"""Default sends in flight per channel and priority (5:3:2)."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///notify.db"
    redis_url: str | None = None
    amqp_url: str | None = None
    http_port: int = 8080
    grpc_port: int = 50051
    host: str = "0.0.0.0"
    api_keys: frozenset[str] = field(default_factory=frozenset)
    jwt_secret: str | None = None
    namespace: str = "notify"
    ingest_target: str | None = None
    """Where the edge finds IngestService in the mesh; unset means in this process."""
    log_level: str = "INFO"
    ws_send_queue: int = 1_000
    """Frames queued for one WebSocket before the client is dropped as too slow."""
    sqlite_synchronous: str = "NORMAL"
    """SQLite durability: NORMAL survives process crashes, FULL also power loss (slower)."""
    ws_ping_interval: float = 30.0
    """Seconds between server pings; a client that does not answer within as long is dropped."""

    rate_limits: RateRules = field(default_factory=RateRules)
    """NOTIFY_RATE_LIMITS: per channel and per (type, channel); the original design's defaults."""
    over_limit: Mapping[str, str] = field(default_factory=dict)
    """NOTIFY_OVER_LIMIT: per channel, "defer" (hold until a slot frees) or "drop"."""
    dedup_window: float = 3600.0
    """NOTIFY_DEDUP_WINDOW: seconds within which a similar notification merges; 0 = never."""
    dedup_window_by_type: Mapping[str, float] = field(default_factory=dict)
    signing_secret: str | None = None
    """NOTIFY_SIGNING_SECRET signs unsubscribe (and tracking) links; default the JWT secret."""
    public_url: str | None = None
    """NOTIFY_PUBLIC_URL: how the edge is reached from outside, for links in messages."""
    scheduler_interval: float = 1.0
    # -- delivery workers ---------------------------------------------------------------
    retry_schedule: tuple[float, ...] = (60.0, 300.0, 900.0)
    """NOTIFY_RETRY_SCHEDULE: waits before each retry; when spent, a dead letter."""
    delivery_concurrency: Mapping[str, int] = field(
        default_factory=lambda: dict(DELIVERY_CONCURRENCY)
    )
    """NOTIFY_DELIVERY_CONCURRENCY: sends in flight per channel and priority (5:3:2)."""
    send_lease: float = SEND_LEASE_SECONDS
    """NOTIFY_SEND_LEASE: seconds a delivery being sent is held by its worker; one held by a
    worker that died is sent again once it runs out."""
    breaker_threshold: int = 5
    """NOTIFY_BREAKER_THRESHOLD: failures in a row that open a provider's breaker."""
    breaker_reset: float = 30.0
    """NOTIFY_BREAKER_RESET: seconds an open breaker waits before a trial call."""
    """NOTIFY_SCHEDULER_INTERVAL: seconds between looks for due scheduled and held work."""

    # -- edge processes, connection limits, shutdown ------------------------------------
    edge_processes: int = 1
    """NOTIFY_EDGE_PROCESSES: edge processes sharing the HTTP port (SO_REUSEPORT); more
    than one needs NOTIFY_REDIS_URL (their pub/sub and presence)."""
    max_connections: int | None = None
    """NOTIFY_MAX_CONNECTIONS: live connections per edge process; unset means 15,000, or
    less when the open-file limit leaves less (an explicit value that does not fit fails)."""
    max_connections_per_user: int = MAX_CONNECTIONS_PER_USER_DEFAULT
    """NOTIFY_MAX_CONNECTIONS_PER_USER: live connections of one user across every edge."""
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS
    """NOTIFY_SHUTDOWN_GRACE: seconds live connections get to close after SIGTERM."""
    presence_ttl: float = PRESENCE_TTL_SECONDS
    """NOTIFY_PRESENCE_TTL: seconds a presence entry lives unless refreshed (every third of
    it); the users of an edge process that died go offline within it."""
    http_header_timeout: float = HTTP_HEADER_TIMEOUT_SECONDS
    """NOTIFY_HTTP_HEADER_TIMEOUT: seconds a client has to send a request's headers (from
    its connect, or from the first byte of a later request); then the connection is closed."""
    http_idle_timeout: float = HTTP_IDLE_TIMEOUT_SECONDS
    """NOTIFY_HTTP_IDLE_TIMEOUT: seconds a keep-alive connection may sit idle between
    requests before it is closed."""

    @property
    def database_kind(self) -> str:
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"


def _number(
    env: Mapping[str, str],
    name: str,
    default: N,
    lo: N,
    hi: N,
    parse: Callable[[str], N],
    what: str,
) -> N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    return _number(env, name, default, lo, hi, int, "a whole number")


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    return _number(env, name, default, lo, hi, float, "a number of seconds")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or default).upper()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not raw.startswith(tuple(f"{s}://" for s in schemes)):
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"{name} must start with one of {allowed}; got {redact_url(raw)!r}")
    return raw


def parse_duration(raw: str, name: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"250ms"`` → seconds."""
    m = _DURATION_RE.match(raw.strip())
    if m is None:
        raise ConfigError(f"{name}: {raw.strip()!r} is not a duration like 30s, 15m, 1h or 1d")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2) or "s"]


def _entries(env: Mapping[str, str], name: str) -> list[tuple[str, str]]:
    """``"a=1,b=2"`` → ``[("a", "1"), ("b", "2")]``; a bare value has the key ``""``."""
    out = []
    for part in (env.get(name) or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        out.append((key.strip(), value.strip()) if sep else ("", key.strip()))
    return out


def _channel(raw: str, name: str) -> str:
    if raw not in CHANNELS:
        raise ConfigError(f"{name}: unknown channel {raw!r}; one of {', '.join(CHANNELS)}")
    return raw


def _rate_limits(env: Mapping[str, str]) -> RateRules:
    """``NOTIFY_RATE_LIMITS="email=10/1h,push=50/1h,comment:email=3/1h"``."""
    name = "NOTIFY_RATE_LIMITS"
    channels: dict[str, Limit] = dict(DEFAULT_LIMITS)
    by_type: dict[tuple[str, str], Limit] = {}
    for key, value in _entries(env, name):
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


def _over_limit(env: Mapping[str, str]) -> dict[str, str]:
    """``NOTIFY_OVER_LIMIT="defer"`` (every channel) or ``"push=drop,sms=defer"``."""
    name = "NOTIFY_OVER_LIMIT"
    out: dict[str, str] = {}
    for key, value in _entries(env, name):
        if value not in ("defer", "drop"):
            raise ConfigError(f"{name}: {value!r} must be defer or drop")
        for channel in CHANNELS if not key else (_channel(key, name),):
            out[channel] = value
    return out


def _dedup(env: Mapping[str, str]) -> tuple[float, dict[str, float]]:
    """``NOTIFY_DEDUP_WINDOW="1h"`` or ``"1h,comment=10m,chat=0"``."""
    name = "NOTIFY_DEDUP_WINDOW"
    default = 3600.0
    by_type: dict[str, float] = {}
    for key, value in _entries(env, name):
        seconds = parse_duration(value, name)
        if key:
            by_type[key] = seconds
        else:
            default = seconds
    return default, by_type


def _retry_schedule(env: Mapping[str, str]) -> tuple[float, ...]:
    """``NOTIFY_RETRY_SCHEDULE="1m,5m,15m"``; ``"none"`` means no retries."""
    raw = (env.get("NOTIFY_RETRY_SCHEDULE") or "").strip()
    if not raw:
        return Settings.retry_schedule
    if raw.lower() == "none":
        return ()
    return tuple(parse_duration(part, "NOTIFY_RETRY_SCHEDULE") for part in raw.split(","))


def concurrency(
    env: Mapping[str, str], name: str = "NOTIFY_DELIVERY_CONCURRENCY"
) -> dict[str, int]:
    """Sends in flight per priority, e.g. ``high=50,normal=30,low=20`` (any subset; the
    rest keeps the defaults)."""
    out: dict[str, int] = dict(DELIVERY_CONCURRENCY)
    for key, value in _entries(env, name):
        if key not in out:
            raise ConfigError(f"{name}: {key!r} must be high, normal or low")
        if not value.isdigit() or not 1 <= int(value) <= 10_000:
            raise ConfigError(f"{name}: {key}={value!r} must be a whole number 1..10000")
        out[key] = int(value)
    return out


def read_environment(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> DeclaredEnv:
    """``environ`` (default ``os.environ``) over an optional ``.env`` file, as every settings
    parser reads it; a ``NOTIFY_*`` name in either that is not a setting is refused (a typo)."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    check_known(values)
    return DeclaredEnv(values)


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """The core settings of ``environ`` over an optional ``.env`` file (see
    :func:`read_environment`)."""
    return core_settings(read_environment(environ, env_file))


def core_settings(env: Mapping[str, str]) -> Settings:
    """Every core setting of ``env``, checked."""
    database_url = (
        _url(env, "NOTIFY_DATABASE_URL", ("sqlite", "postgresql+psycopg", "postgresql"))
        or Settings.database_url
    )
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")

    api_keys_raw = env.get("NOTIFY_API_KEYS", "")
    api_keys = frozenset(k.strip() for k in api_keys_raw.split(",") if k.strip())
    for key in api_keys:
        if len(key) < 8:
            raise ConfigError("NOTIFY_API_KEYS: every key must be at least 8 characters long")

    jwt_secret = env.get("NOTIFY_JWT_SECRET") or None
    if jwt_secret is not None and len(jwt_secret) < 16:
        raise ConfigError("NOTIFY_JWT_SECRET must be at least 16 characters long")

    namespace = env.get("NOTIFY_NAMESPACE") or "notify"
    if not _NAMESPACE_RE.match(namespace):
        raise ConfigError("NOTIFY_NAMESPACE must be 1-40 letters, digits, '-' or '_'")

    level = (env.get("NOTIFY_LOG_LEVEL") or "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("NOTIFY_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")

    signing_secret = env.get("NOTIFY_SIGNING_SECRET") or jwt_secret
    if signing_secret is not None and len(signing_secret) < 16:
        raise ConfigError("NOTIFY_SIGNING_SECRET must be at least 16 characters long")
    dedup_window, dedup_by_type = _dedup(env)

    return Settings(
        database_url=database_url,
        redis_url=_url(env, "NOTIFY_REDIS_URL", ("redis", "rediss", "unix")),
        amqp_url=_url(env, "NOTIFY_AMQP_URL", ("amqp", "amqps")),
        http_port=_int(env, "NOTIFY_HTTP_PORT", 8080, 0, 65535),
        grpc_port=_int(env, "NOTIFY_GRPC_PORT", 50051, 0, 65535),
        host=env.get("NOTIFY_HOST") or "0.0.0.0",
        api_keys=api_keys,
        jwt_secret=jwt_secret,
        namespace=namespace,
        ingest_target=env.get("NOTIFY_INGEST_TARGET") or None,
        log_level=level,
        sqlite_synchronous=_choice(env, "NOTIFY_SQLITE_SYNCHRONOUS", "NORMAL", ("NORMAL", "FULL")),
        ws_send_queue=_int(env, "NOTIFY_WS_SEND_QUEUE", 1_000, 1, 1_000_000),
        ws_ping_interval=_float(env, "NOTIFY_WS_PING_INTERVAL", 30.0, 0.1, 3600.0),
        rate_limits=_rate_limits(env),
        over_limit=_over_limit(env),
        dedup_window=dedup_window,
        dedup_window_by_type=dedup_by_type,
        signing_secret=signing_secret,
        public_url=_url(env, "NOTIFY_PUBLIC_URL", ("http", "https")),
        scheduler_interval=_float(env, "NOTIFY_SCHEDULER_INTERVAL", 1.0, 0.01, 3600.0),
        retry_schedule=_retry_schedule(env),
        delivery_concurrency=concurrency(env),
        send_lease=_float(env, "NOTIFY_SEND_LEASE", SEND_LEASE_SECONDS, 1.0, 86_400.0),
        breaker_threshold=_int(env, "NOTIFY_BREAKER_THRESHOLD", 5, 1, 1_000),
        breaker_reset=_float(env, "NOTIFY_BREAKER_RESET", 30.0, 0.01, 86_400.0),
        # -- edge processes, connection limits, shutdown --
        edge_processes=_int(env, "NOTIFY_EDGE_PROCESSES", 1, 1, EDGE_PROCESSES_MAX),
        max_connections=_int(env, "NOTIFY_MAX_CONNECTIONS", 0, 1, 10_000_000) or None,
        max_connections_per_user=_int(
            env, "NOTIFY_MAX_CONNECTIONS_PER_USER", MAX_CONNECTIONS_PER_USER_DEFAULT, 1, 100_000
        ),
        shutdown_grace=_float(env, "NOTIFY_SHUTDOWN_GRACE", SHUTDOWN_GRACE_SECONDS, 0.0, 3_600.0),
        presence_ttl=_float(env, "NOTIFY_PRESENCE_TTL", PRESENCE_TTL_SECONDS, 0.5, 86_400.0),
        http_header_timeout=_float(
            env, "NOTIFY_HTTP_HEADER_TIMEOUT", HTTP_HEADER_TIMEOUT_SECONDS, 0.1, 3_600.0
        ),
        http_idle_timeout=_float(
            env, "NOTIFY_HTTP_IDLE_TIMEOUT", HTTP_IDLE_TIMEOUT_SECONDS, 0.1, 3_600.0
        ),
    )
