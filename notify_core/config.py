"""Configuration from the environment (a ``.env`` file may set the same names).

Every setting is read and checked once, at start; a missing or malformed one raises
:class:`ConfigError` naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values

from notify_core.errors import ConfigError

N = TypeVar("N", int, float)

_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


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
        raise ConfigError(f"{name} must start with one of {allowed}; got {raw!r}")
    return raw


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over an optional ``.env`` file."""
    env: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ if environ is None else environ)

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
    )
