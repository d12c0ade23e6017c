"""The core's configuration from the environment (a ``.env`` file may set the same names).

Every core setting is declared once below (:class:`~notify_core.settings_decl.Setting`:
name, parser with its bounds, default, doc) and :class:`Settings` takes its defaults from
the declarations; :func:`core_settings` reads each through its declaration, at start, so a
missing or malformed value raises :class:`ConfigError` naming the variable. A service's own
settings (email providers, webhooks, digests) are declared and parsed beside that service,
from the same :func:`read_environment`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from notify_core.config_names import DeclaredEnv, check_known
from notify_core.config_rules import (
    OVER_LIMIT_RULES,
    RATE_RULES,
    RETRIES,
    api_keys,
    concurrency,
    database_url,
    dedup,
    namespace,
)
from notify_core.constants import (
    EDGE_PROCESSES_MAX,
    HTTP_HEADER_TIMEOUT_SECONDS,
    HTTP_IDLE_TIMEOUT_SECONDS,
    LIVE_SEND_QUEUE,
    MAX_CONNECTIONS_PER_USER_DEFAULT,
    PRESENCE_TTL_SECONDS,
    SEND_LEASE_SECONDS,
    SHUTDOWN_GRACE_SECONDS,
    WORKER_PROCESSES_MAX,
)
from notify_core.domain import Priority
from notify_core.ratelimit import RateRules
from notify_core.settings_decl import (
    TEXT,
    Setting,
    SettingsGroup,
    at_least,
    choice,
    seconds,
    text,
    url,
    whole,
)

_PORT = whole(0, 65535)

DATABASE_URL = Setting(
    "NOTIFY_DATABASE_URL",
    database_url,
    "sqlite:///notify.db",
    "SQLAlchemy URL of the database: `sqlite:///…` or `postgresql+psycopg://…` "
    "(`postgresql://` is taken as psycopg)",
)
REDIS_URL: Setting[str | None] = Setting(
    "NOTIFY_REDIS_URL",
    url("redis", "rediss", "unix"),
    None,
    "Redis (`redis://`, `rediss://`, `unix://`) for cache, presence and pub/sub; unset means "
    "in memory (one process only)",
)
AMQP_URL: Setting[str | None] = Setting(
    "NOTIFY_AMQP_URL",
    url("amqp", "amqps"),
    None,
    "RabbitMQ (`amqp://`, `amqps://`) for the work queues; unset means the queue lives in the "
    "database",
)
HTTP_PORT = Setting("NOTIFY_HTTP_PORT", _PORT, 8080, "port of the edge: REST and WebSocket")
GRPC_PORT = Setting(
    "NOTIFY_GRPC_PORT", _PORT, 50051, "port of gRPC (all services share it in `notify up`)"
)
HOST = Setting("NOTIFY_HOST", TEXT, "0.0.0.0", "address both ports listen on")
API_KEYS = Setting(
    "NOTIFY_API_KEYS",
    api_keys,
    frozenset[str](),
    "comma-separated API keys accepted from producers, each at least 8 characters",
    shown_default="none",
    secret=True,
)
JWT_SECRET: Setting[str | None] = Setting(
    "NOTIFY_JWT_SECRET",
    text(at_least(16)),
    None,
    "HS256 secret of user tokens, at least 16 characters (use 32 or more: shorter keys make "
    "the JWT library warn)",
    shown_default="none",
    secret=True,
)
NAMESPACE = Setting(
    "NOTIFY_NAMESPACE",
    namespace,
    "notify",
    "prefix of queue names and Redis keys, so deployments can share RabbitMQ and Redis; "
    "1 to 40 letters, digits, `-`, `_`",
)
INGEST_TARGET: Setting[str | None] = Setting(
    "NOTIFY_INGEST_TARGET",
    TEXT,
    None,
    "`host:port` of IngestService, for an edge (`serve realtime`) running without ingest in "
    "the same process; required there, unused otherwise",
)
LOG_LEVEL = Setting(
    "NOTIFY_LOG_LEVEL", choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True), "INFO", "log level"
)
WS_SEND_QUEUE = Setting(
    "NOTIFY_WS_SEND_QUEUE",
    whole(1, 1_000_000),
    LIVE_SEND_QUEUE,
    "frames queued for one WebSocket before the client is dropped as too slow",
)
WS_PING_INTERVAL = Setting(
    "NOTIFY_WS_PING_INTERVAL",
    seconds(0.1, 3600),
    30.0,
    "seconds between the server's WebSocket pings; a client that does not answer within as "
    "long is dropped",
)
SQLITE_SYNCHRONOUS = Setting(
    "NOTIFY_SQLITE_SYNCHRONOUS",
    choice("NORMAL", "FULL", upper=True),
    "NORMAL",
    "SQLite durability: `NORMAL` (WAL; a commit survives the crash of any process) or `FULL` "
    "(an fsync per commit; also survives power loss)",
)
RATE_LIMITS = Setting(
    "NOTIFY_RATE_LIMITS",
    RATE_RULES,
    RateRules(),
    "per channel and per `type:channel`, e.g. `email=10/1h,push=50/1h,comment:email=3/1h` "
    "(durations `ms`, `s`, `m`, `h`, `d`)",
    shown_default="the original design's",
)
OVER_LIMIT: Setting[Mapping[str, str]] = Setting(
    "NOTIFY_OVER_LIMIT",
    OVER_LIMIT_RULES,
    {},
    "`defer` or `drop`, for every channel or per channel (`push=drop,sms=defer`); email over "
    "its limit always goes to the digest",
    shown_default="`defer`",
)
_DEDUP_EVERY = 3600.0
DEDUP_WINDOW = Setting(
    "NOTIFY_DEDUP_WINDOW",
    dedup(_DEDUP_EVERY),
    (_DEDUP_EVERY, {}),
    "how long sends with the same `group_key` merge into one inbox entry, with per-type "
    "windows: `1h,chat=0,comment=10m` (`0` = never)",
)
SCHEDULER_INTERVAL = Setting(
    "NOTIFY_SCHEDULER_INTERVAL",
    seconds(0.01, 3600),
    1.0,
    "seconds between looks for due scheduled sends and held work",
)
SEND_LEASE = Setting(
    "NOTIFY_SEND_LEASE",
    seconds(1, 86_400),
    SEND_LEASE_SECONDS,
    "seconds a delivery worker holds a delivery it is sending; if the worker dies, the "
    "delivery is sent again once this runs out (make it longer than a send can take)",
)
SIGNING_SECRET: Setting[str | None] = Setting(
    "NOTIFY_SIGNING_SECRET",
    text(at_least(16)),
    None,
    "signs unsubscribe and tracking links (at least 16 characters)",
    shown_default="the JWT secret",
    secret=True,
)
PUBLIC_URL: Setting[str | None] = Setting(
    "NOTIFY_PUBLIC_URL",
    url("http", "https"),
    None,
    "how the edge is reached from outside (`https://…`), for links in messages",
    shown_default="the request's own URL",
)
EDGE_PROCESSES = Setting(
    "NOTIFY_EDGE_PROCESSES",
    whole(1, EDGE_PROCESSES_MAX),
    1,
    "edge processes sharing `NOTIFY_HTTP_PORT` (see [Scaling the edge](#scaling-the-edge)); "
    "more than 1 needs `NOTIFY_REDIS_URL`",
)
WORKER_PROCESSES: Setting[int | None] = Setting(
    "NOTIFY_WORKER_PROCESSES",
    whole(0, WORKER_PROCESSES_MAX),
    None,
    "child processes of `notify up` that run the router, the scheduler and the digest runs, "
    "so that they use another core than ingest and the edge; more than 0 needs "
    "`NOTIFY_REDIS_URL`",
    shown_default="1 with `NOTIFY_REDIS_URL`, PostgreSQL and 2 CPUs or more, else 0",
)
MAX_CONNECTIONS: Setting[int | None] = Setting(
    "NOTIFY_MAX_CONNECTIONS",
    whole(1, 10_000_000),
    None,
    "live connections (WebSocket and SSE) per edge process; must fit the open-file limit less "
    "1,280 kept for other files",
    shown_default="`15000`, or less if the limit is lower",
)
MAX_CONNECTIONS_PER_USER = Setting(
    "NOTIFY_MAX_CONNECTIONS_PER_USER",
    whole(1, 100_000),
    MAX_CONNECTIONS_PER_USER_DEFAULT,
    "live connections of one user across every edge process and node",
)
SHUTDOWN_GRACE = Setting(
    "NOTIFY_SHUTDOWN_GRACE",
    seconds(0, 3_600),
    SHUTDOWN_GRACE_SECONDS,
    "seconds live connections get to close after SIGTERM",
)
HTTP_HEADER_TIMEOUT = Setting(
    "NOTIFY_HTTP_HEADER_TIMEOUT",
    seconds(0.1, 3_600),
    HTTP_HEADER_TIMEOUT_SECONDS,
    "seconds a client has to send a request's headers (from its connect, or from the first "
    "byte of a later request on the connection); then the connection is closed",
)
HTTP_IDLE_TIMEOUT = Setting(
    "NOTIFY_HTTP_IDLE_TIMEOUT",
    seconds(0.1, 3_600),
    HTTP_IDLE_TIMEOUT_SECONDS,
    "seconds a keep-alive HTTP connection may sit idle between requests before it is closed",
)
PRESENCE_TTL = Setting(
    "NOTIFY_PRESENCE_TTL",
    seconds(0.5, 86_400),
    PRESENCE_TTL_SECONDS,
    "seconds a presence entry lives unless refreshed (every third of it): the users of an "
    "edge process that died go offline within it",
)
RETRY_SCHEDULE = Setting(
    "NOTIFY_RETRY_SCHEDULE",
    RETRIES,
    (60.0, 300.0, 900.0),
    "waits before each retry of a failed delivery (±20 % jitter), e.g. `1m,5m,15m`; `none`: "
    "no retries; when spent, a dead letter",
)
_CONCURRENCY = {Priority.HIGH.value: 250, Priority.NORMAL.value: 150, Priority.LOW.value: 100}
DELIVERY_CONCURRENCY: Setting[Mapping[str, int]] = Setting(
    "NOTIFY_DELIVERY_CONCURRENCY",
    concurrency(_CONCURRENCY),
    _CONCURRENCY,
    "sends in flight per channel and priority (5:3:2), any subset of `high=…,normal=…,low=…`",
)
BREAKER_THRESHOLD = Setting(
    "NOTIFY_BREAKER_THRESHOLD",
    whole(1, 1_000),
    5,
    "failures in a row that open a provider's (or webhook host's) circuit breaker",
)
BREAKER_RESET = Setting(
    "NOTIFY_BREAKER_RESET",
    seconds(0.01, 86_400),
    30.0,
    "seconds an open breaker waits before one trial call",
)

CORE = SettingsGroup(
    "notify_core/config.py",
    (
        DATABASE_URL,
        REDIS_URL,
        AMQP_URL,
        HTTP_PORT,
        GRPC_PORT,
        HOST,
        API_KEYS,
        JWT_SECRET,
        NAMESPACE,
        INGEST_TARGET,
        LOG_LEVEL,
        WS_SEND_QUEUE,
        WS_PING_INTERVAL,
        SQLITE_SYNCHRONOUS,
        RATE_LIMITS,
        OVER_LIMIT,
        DEDUP_WINDOW,
        SCHEDULER_INTERVAL,
        SEND_LEASE,
        SIGNING_SECRET,
        PUBLIC_URL,
        EDGE_PROCESSES,
        WORKER_PROCESSES,
        MAX_CONNECTIONS,
        MAX_CONNECTIONS_PER_USER,
        SHUTDOWN_GRACE,
        HTTP_HEADER_TIMEOUT,
        HTTP_IDLE_TIMEOUT,
        PRESENCE_TTL,
        RETRY_SCHEDULE,
        DELIVERY_CONCURRENCY,
        BREAKER_THRESHOLD,
        BREAKER_RESET,
    ),
)
"""Every core setting, in the README's order."""


@dataclass(frozen=True)
class Settings:
    """What the core and more than one service use; each field's meaning, bounds and
    default are its declaration's above."""

    database_url: str = DATABASE_URL.default
    redis_url: str | None = REDIS_URL.default
    amqp_url: str | None = AMQP_URL.default
    http_port: int = HTTP_PORT.default
    grpc_port: int = GRPC_PORT.default
    host: str = HOST.default
    api_keys: frozenset[str] = field(default=API_KEYS.default, repr=False)
    jwt_secret: str | None = field(default=JWT_SECRET.default, repr=False)
    namespace: str = NAMESPACE.default
    ingest_target: str | None = INGEST_TARGET.default
    """Where the edge finds IngestService in the mesh; unset means in this process."""
    log_level: str = LOG_LEVEL.default
    ws_send_queue: int = WS_SEND_QUEUE.default
    sqlite_synchronous: str = SQLITE_SYNCHRONOUS.default
    ws_ping_interval: float = WS_PING_INTERVAL.default
    rate_limits: RateRules = field(default_factory=RateRules)
    over_limit: Mapping[str, str] = field(default_factory=dict)
    """Per channel, "defer" (hold until a slot frees) or "drop"."""
    dedup_window: float = DEDUP_WINDOW.default[0]
    dedup_window_by_type: Mapping[str, float] = field(default_factory=dict)
    signing_secret: str | None = field(default=SIGNING_SECRET.default, repr=False)
    public_url: str | None = PUBLIC_URL.default
    scheduler_interval: float = SCHEDULER_INTERVAL.default
    # -- delivery workers ---------------------------------------------------------------
    retry_schedule: tuple[float, ...] = RETRY_SCHEDULE.default
    delivery_concurrency: Mapping[str, int] = field(
        default_factory=lambda: dict(DELIVERY_CONCURRENCY.default)
    )
    send_lease: float = SEND_LEASE.default
    breaker_threshold: int = BREAKER_THRESHOLD.default
    breaker_reset: float = BREAKER_RESET.default
    # -- edge processes, connection limits, shutdown ------------------------------------
    edge_processes: int = EDGE_PROCESSES.default
    worker_processes: int | None = WORKER_PROCESSES.default
    """Unset means :attr:`workers` decides."""
    max_connections: int | None = MAX_CONNECTIONS.default
    """Unset means 15,000, or less when the open-file limit leaves less."""
    max_connections_per_user: int = MAX_CONNECTIONS_PER_USER.default
    shutdown_grace: float = SHUTDOWN_GRACE.default
    presence_ttl: float = PRESENCE_TTL.default
    http_header_timeout: float = HTTP_HEADER_TIMEOUT.default
    http_idle_timeout: float = HTTP_IDLE_TIMEOUT.default

    @property
    def database_kind(self) -> str:
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"

    @property
    def workers(self) -> int:
        """How many worker processes ``notify up`` starts: ``NOTIFY_WORKER_PROCESSES``, or
        when unset 1 where another process can share the work (Redis for live events and
        presence, PostgreSQL for the rows) and a second CPU can run it, else 0."""
        if self.worker_processes is not None:
            return self.worker_processes
        shared = self.redis_url is not None and self.database_kind == "postgresql"
        return 1 if shared and len(os.sched_getaffinity(0)) >= 2 else 0


_FIELDS: Mapping[str, Setting[Any]] = {
    "database_url": DATABASE_URL,
    "redis_url": REDIS_URL,
    "amqp_url": AMQP_URL,
    "http_port": HTTP_PORT,
    "grpc_port": GRPC_PORT,
    "host": HOST,
    "api_keys": API_KEYS,
    "jwt_secret": JWT_SECRET,
    "namespace": NAMESPACE,
    "ingest_target": INGEST_TARGET,
    "log_level": LOG_LEVEL,
    "ws_send_queue": WS_SEND_QUEUE,
    "sqlite_synchronous": SQLITE_SYNCHRONOUS,
    "ws_ping_interval": WS_PING_INTERVAL,
    "rate_limits": RATE_LIMITS,
    "over_limit": OVER_LIMIT,
    "public_url": PUBLIC_URL,
    "scheduler_interval": SCHEDULER_INTERVAL,
    "retry_schedule": RETRY_SCHEDULE,
    "delivery_concurrency": DELIVERY_CONCURRENCY,
    "send_lease": SEND_LEASE,
    "breaker_threshold": BREAKER_THRESHOLD,
    "breaker_reset": BREAKER_RESET,
    "edge_processes": EDGE_PROCESSES,
    "worker_processes": WORKER_PROCESSES,
    "max_connections": MAX_CONNECTIONS,
    "max_connections_per_user": MAX_CONNECTIONS_PER_USER,
    "shutdown_grace": SHUTDOWN_GRACE,
    "presence_ttl": PRESENCE_TTL,
    "http_header_timeout": HTTP_HEADER_TIMEOUT,
    "http_idle_timeout": HTTP_IDLE_TIMEOUT,
}
"""The fields of :class:`Settings` that are one setting each, as read."""


def read_environment(
    environ: Mapping[str, str] | None,
    env_file: str | Path | None,
    known: Collection[str],
) -> DeclaredEnv:
    """``environ`` (default ``os.environ``) over an optional ``.env`` file, as every settings
    parser reads it; a ``NOTIFY_*`` name in either that is not in ``known`` (every declared
    setting, collected by the composition root) is refused as a typo."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    check_known(values, known)
    return DeclaredEnv(values, known)


def core_fields(env: Mapping[str, str]) -> dict[str, Any]:
    """Every core setting of ``env``, checked, as :class:`Settings` fields (a subclass adds
    its own before building)."""
    fields = {name: setting.read(env) for name, setting in _FIELDS.items()}
    fields["dedup_window"], fields["dedup_window_by_type"] = DEDUP_WINDOW.read(env)
    fields["signing_secret"] = SIGNING_SECRET.read(env) or fields["jwt_secret"]
    return fields


def core_settings(env: Mapping[str, str]) -> Settings:
    """Every core setting of ``env``, checked."""
    return Settings(**core_fields(env))
