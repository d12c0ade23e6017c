"""Every queue name, Redis key and channel name, and the limits shared across services.

Names are built from a namespace (``NOTIFY_NAMESPACE``, default ``notify``) so that several
deployments, or test runs, can share one Redis and one RabbitMQ without seeing each other.
"""

from __future__ import annotations

from typing import Final

# --- priorities -------------------------------------------------------------------------
# Queue priority of a job: AMQP message priority and the embedded queue's sort key.
PRIORITY_LOW: Final = 0
PRIORITY_NORMAL: Final = 1
PRIORITY_HIGH: Final = 2
MAX_PRIORITY: Final = PRIORITY_HIGH
PRIORITY_NAMES: Final = {"low": PRIORITY_LOW, "normal": PRIORITY_NORMAL, "high": PRIORITY_HIGH}
PRIORITY_BY_VALUE: Final = {v: k for k, v in PRIORITY_NAMES.items()}

# --- channels ---------------------------------------------------------------------------
CHANNEL_NAMES: Final = ("inapp", "email", "sms", "push", "webpush", "webhook")

# --- queues -----------------------------------------------------------------------------
QUEUE_ROUTE: Final = "route"
"""Routing jobs: one per accepted notification, consumed by the router."""

QUEUE_FANOUT: Final = "fanout"
"""Topic sends: one job per send, consumed by ingest, which fans it out in batches."""
QUEUES: Final = (QUEUE_ROUTE, QUEUE_FANOUT)
"""Every queue a node declares at start (publishers and consumers alike)."""
SCHEDULER_BATCH: Final = 500
"""Due scheduled sends, or due held deliveries, released per transaction."""
FANOUT_BATCH: Final = 1_000
"""Subscribers read, and notifications accepted, per step of a topic fan-out."""

QUEUE_HOLD_STEPS: Final = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
"""RabbitMQ: the delays (seconds) of the hold queues that delayed publishes wait in; a
delay is rounded up to the next step (a longer one waits in the last step)."""

QUEUE_AMQP_MAX_PRIORITY: Final = MAX_PRIORITY + 1
"""``x-max-priority`` of every RabbitMQ queue; one spare level, because changing it means
deleting the queue."""
QUEUE_VISIBILITY_TIMEOUT_SECONDS: Final = 30.0
"""Database queue: a claimed job not acked, and whose lease nobody extends, comes back."""
QUEUE_POLL_SECONDS: Final = 0.05
"""Database queue: first poll interval when idle (a publish in the same process wakes at once)."""
QUEUE_IDLE_POLL_SECONDS: Final = 0.5
"""Database queue: the idle poll interval backs off up to this."""
QUEUE_CONFIRM_TIMEOUT_SECONDS: Final = 10.0
"""RabbitMQ: a publish not confirmed within this raises ``QueueUnavailable``."""
QUEUE_RECONNECT_MAX_SECONDS: Final = 30.0
"""RabbitMQ: longest wait between two reconnection attempts."""


def amqp_connection_name(namespace: str) -> str:
    """``connection_name`` our RabbitMQ connections announce (shown by the management UI)."""
    return f"{namespace}:queue"


def queue_name(namespace: str, queue: str) -> str:
    """The broker-side name of one of our queues."""
    return f"{namespace}.{queue}"


def hold_queue_name(namespace: str, seconds: float) -> str:
    """The hold queue (and its exchange) for delayed publishes of ``seconds``."""
    return f"{namespace}.hold.{round(seconds * 1000)}ms"


# --- Redis keys and pub/sub channels ----------------------------------------------------
def user_channel(namespace: str, user_id: str) -> str:
    """Pub/sub channel carrying live events for one user, subscribed by the nodes holding them."""
    return f"{namespace}:user:{user_id}"


def presence_key(namespace: str, user_id: str) -> str:
    """Sorted set of a user's live connections, scored by when each entry expires."""
    return f"{namespace}:presence:{user_id}"


def rate_key(namespace: str, user_id: str, channel: str, scope: str = "all") -> str:
    """Sorted set of a user's recent sends on a channel (``scope``: "all" or a type),
    scored by when each happened; the sliding-window rate limit counts it."""
    return f"{namespace}:rate:{channel}:{scope}:{user_id}"


def preferences_key(namespace: str, user_id: str) -> str:
    """Cached preferences of one user (JSON), invalidated on every write."""
    return f"{namespace}:prefs:{user_id}"


PREFERENCES_TTL_SECONDS: Final = 3600.0

# --- unsubscribe links ------------------------------------------------------------------
UNSUBSCRIBE_TTL_SECONDS: Final = 30 * 24 * 3600
"""Default lifetime of a one-click unsubscribe link."""
UNSUBSCRIBE_MAX_TTL_SECONDS: Final = 366 * 24 * 3600
"""Longest lifetime a producer may ask for."""
UNSUBSCRIBE_ALL_CHANNELS: Final = "*"
"""The channel of a link that switches a type off on every channel."""
MAX_UNSUBSCRIBE_TOKEN: Final = 2_048
"""Characters; a longer token is refused before any decoding."""


def last_seen_key(namespace: str, user_id: str) -> str:
    """When a user was last seen connected (epoch seconds)."""
    return f"{namespace}:lastseen:{user_id}"


def subscriber_client_name(namespace: str) -> str:
    """``CLIENT SETNAME`` of a node's dedicated pub/sub connection (visible in CLIENT LIST)."""
    safe = "".join(c if c.isprintable() and not c.isspace() else "_" for c in namespace)
    return f"{safe}:subscriber"


# --- limits on input --------------------------------------------------------------------
MAX_USER_ID: Final = 255
MAX_TYPE: Final = 50
MAX_TITLE: Final = 255
MAX_MESSAGE: Final = 10_000
MAX_DATA_BYTES: Final = 16_384
MAX_IDEMPOTENCY_KEY: Final = 255
MAX_TEMPLATE: Final = 100
MAX_LOCALE: Final = 35
MAX_GROUP_KEY: Final = 255
MAX_SCHEDULE_DAYS: Final = 365
"""``send_at`` may be at most this far ahead."""
MAX_BATCH: Final = 1_000
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
INBOX_DEFAULT_LIMIT: Final = 20
INBOX_MAX_LIMIT: Final = 100
PENDING_ON_CONNECT: Final = 50

# --- devices and topics -----------------------------------------------------------------
DEVICE_PLATFORMS: Final = ("fcm", "apns", "webpush")
PUSH_PLATFORMS: Final = ("fcm", "apns")
"""Platforms whose active token means the user has a mobile push device (channel ``push``)."""
WEBPUSH_PLATFORMS: Final = ("webpush",)
"""Platforms whose active token means a browser subscription (channel ``webpush``)."""
MAX_DEVICE_TOKEN: Final = 4096
"""Longest token of any platform (an FCM token, or a web push subscription as JSON)."""
APNS_TOKEN_HEX: Final = 64
MAX_WEBPUSH_ENDPOINT: Final = 2048
MAX_DEVICE_NAME: Final = 255
MAX_DEVICE_ID: Final = 255
MAX_TOPIC: Final = 100
MAX_TOPIC_SUBSCRIBE: Final = 10_000
"""Most user ids one subscribe or unsubscribe call takes."""
TOPIC_PAGE_DEFAULT: Final = 100
TOPIC_PAGE_MAX: Final = 1_000

# --- timing -----------------------------------------------------------------------------
HEARTBEAT_SECONDS: Final = 30.0
PRESENCE_TTL_SECONDS: Final = 90.0
"""A presence entry not refreshed for this long is gone: a dead node's users go offline."""
LAST_SEEN_TTL_SECONDS: Final = 30 * 24 * 3600.0
"""How long a user's last-seen time is kept after their last connect, refresh or disconnect."""
RELAY_AFTER_SECONDS: Final = 10.0
"""An accepted notification not routed after this long is published to the queue again."""
