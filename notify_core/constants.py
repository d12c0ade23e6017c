"""Every queue name, Redis key and channel name, and the limits shared across services.

Names are built from a namespace (``NOTIFY_NAMESPACE``, default ``notify``) so that several
deployments, or test runs, can share one Redis and one RabbitMQ without seeing each other.
"""

from __future__ import annotations

from typing import Final

from notify_core.domain import CHANNELS, DELIVERY_CHANNELS, PRIORITIES, Priority

# --- priorities -------------------------------------------------------------------------
# Queue priority of a job: AMQP message priority and the embedded queue's sort key.
# (the priorities and channels themselves are in notify_core.domain).
PRIORITY_LOW: Final = Priority.LOW.queue_priority
PRIORITY_NORMAL: Final = Priority.NORMAL.queue_priority
PRIORITY_HIGH: Final = Priority.HIGH.queue_priority
MAX_PRIORITY: Final = PRIORITY_HIGH

# --- queues -----------------------------------------------------------------------------
QUEUE_ROUTE: Final = "route"
"""Routing jobs: one per accepted notification, consumed by the router."""

QUEUE_FANOUT: Final = "fanout"
"""Topic sends: one job per send, consumed by ingest, which fans it out in batches."""


def delivery_queue(channel: str, priority: str) -> str:
    """The work queue of one channel at one priority (each has its own concurrency)."""
    return f"deliver.{channel}.{priority}"


DELIVERY_QUEUES: Final = tuple(delivery_queue(c, p) for c in DELIVERY_CHANNELS for p in PRIORITIES)
DIGEST_DELIVERY: Final = "digest"
"""The delivery worker that sends digests (``digests`` rows) through the email providers:
its name, and its queue's channel part."""
DIGEST_PRIORITY: Final = Priority.LOW
"""Digests gather low-priority email: their jobs go on the low queue, the only one the
digest worker consumes."""
DIGEST_QUEUE: Final = delivery_queue(DIGEST_DELIVERY, DIGEST_PRIORITY)
"""``deliver.digest.low``: one job per digest a run hands over, and its retries."""
QUEUES: Final = (QUEUE_ROUTE, QUEUE_FANOUT, *DELIVERY_QUEUES, DIGEST_QUEUE)
"""Every queue a node declares at start (publishers and consumers alike)."""
SEND_LEASE_SECONDS: Final = 60.0
"""A delivery being sent is leased this long (``NOTIFY_SEND_LEASE``); a crashed worker's
lease runs out and another worker may take it."""
SCHEDULER_BATCH: Final = 500
"""Due scheduled sends, or due held deliveries, released per transaction."""
FANOUT_BATCH: Final = 1_000
"""Subscribers read, and notifications accepted, per step of a topic fan-out."""
ROUTE_JOB_IDS: Final = 1_000
"""Notifications named by one routing job (``{"ids": [...]}``, one priority each)."""
ROUTE_CHUNK: Final = 1_000
"""Notifications the router decides per transaction; a consumed batch of jobs is split into
chunks of this many."""

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
OUTBOX_SWEEP_AFTER_SECONDS: Final = 5.0
"""An outbox row this old was not handed over by its process (it died, or RabbitMQ did not
confirm): the relay's sweep publishes it."""
OUTBOX_SWEEP_INTERVAL_SECONDS: Final = 2.0
"""How often each process's outbox relay looks for rows left behind."""
OUTBOX_BATCH: Final = 1_000
"""Rows published per sweep transaction."""
OUTBOX_MAX_PENDING: Final = 100_000
"""Jobs handed over and waiting for the relay in memory; past this they wait for the sweep."""
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


def holder_channel(namespace: str, holder: str) -> str:
    """Pub/sub channel of one holder (a hub: the node's or an edge process's), carrying
    envelopes of a batch's live events for the users it holds (``notify_core.holders``)."""
    return f"{namespace}:holder:{holder}"


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


def inbox_token_key(namespace: str, user_id: str) -> str:
    """A user's current inbox-cache token: cached inbox entries count only under it, and
    every change to the user's inbox deletes it (``notify_core.inbox_cache``)."""
    return f"{namespace}:inbox:token:{user_id}"


def inbox_page_key(namespace: str, user_id: str) -> str:
    """A user's cached first inbox page: token, unread count and the encoded JSON body."""
    return f"{namespace}:inbox:page:{user_id}"


def inbox_count_key(namespace: str, user_id: str) -> str:
    """A user's cached unread count, with the token it was computed under."""
    return f"{namespace}:inbox:count:{user_id}"


INBOX_CACHE_TTL_SECONDS: Final = 30.0
"""A cached first page or unread count lives this long at most (a backstop: every change
to the inbox invalidates it at once)."""
INBOX_TOKEN_TTL_SECONDS: Final = 3600.0

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
    return f"{_redis_safe(namespace)}:subscriber"


def cache_client_name(namespace: str) -> str:
    """``CLIENT SETNAME`` of a node's pooled connections (cache, publishing, presence,
    rate limits), so that operators can tell a deployment's clients apart in CLIENT LIST."""
    return f"{_redis_safe(namespace)}:cache"


def _redis_safe(namespace: str) -> str:
    return "".join(c if c.isprintable() and not c.isspace() else "_" for c in namespace)


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
"""A JSON request body may be at most this long; the edge stops reading there (413)."""
MAX_JSON_DEPTH: Final = 32
"""Arrays and objects nest at most this deep in any JSON input (protobuf's Struct, which
carries ``data`` between services, stops at 100)."""
MAX_JSON_INTEGER: Final = 2**53 - 1
MAX_INTEGER_COLUMN: Final = 2**31 - 1
"""The largest value an INTEGER column (a template's version) holds."""
"""Whole numbers in JSON input stay within ±this: beyond it a double (protobuf's Struct, a
JavaScript client) no longer holds them exactly."""
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

# --- templates --------------------------------------------------------------------------
TEMPLATE_LAYOUT: Final = "layout"
"""The "channel" of a layout: an HTML frame that email templates extend."""
TEMPLATE_CHANNELS: Final = (*CHANNELS, TEMPLATE_LAYOUT)
MAX_TEMPLATE_SUBJECT: Final = 998
"""Characters of a subject template (the longest email header line, RFC 5322)."""
MAX_TEMPLATE_BODY: Final = 256 * 1024
"""Characters of a body template."""
MAX_PUSH_TITLE_TEMPLATE: Final = 100
"""Characters of a push template's title (its ``subject``). FCM and APNs bound the whole
payload (4 KB), not the title; a lock screen shows one line of it, so more is cut on the
device anyway."""
MAX_PUSH_BODY_TEMPLATE: Final = 1_000
"""Characters of a push template's body: with a full title, at most 3,300 bytes of UTF-8
for any text of the Basic Multilingual Plane (3 bytes a character at most), which leaves
room in FCM's and APNs' 4 KB payload for their own keys and the notification's ids."""
MAX_SMS_BODY_TEMPLATE: Final = 1_600
"""Characters of an SMS template's body: the longest message Twilio takes (10 segments of
160 GSM-7 characters). What a template renders is cut to ``NOTIFY_SMS_MAX_SEGMENTS`` when
the message is sent; this bounds only the source."""
MAX_TEMPLATE_VARIABLES: Final = 200
MAX_TEMPLATE_VARIABLE: Final = 100
"""Characters of one declared variable name."""
MAX_RENDERED_CHARS: Final = 1_000_000
"""Output of one rendered part; a template producing more fails instead of eating memory."""
MAX_TEMPLATE_REPEAT: Final = 100_000
"""Longest string or list a template may build with ``*``; ``**`` may build integers of at
most eight times as many bits."""
TEMPLATE_MAX_STEPS: Final = 100_000
"""Loop iterations and calls one render may take (all its parts together)."""
TEMPLATE_MAX_CPU_SECONDS: Final = 1.0
"""CPU time one render may use (its thread's, so a busy machine does not count)."""
TEMPLATE_RENDER_THREADS: Final = 4
"""Threads rendering templates per process, off the event loop."""
TEMPLATE_CACHE_SIZE: Final = 1_024
"""Compiled templates kept per process (least recently used dropped first)."""

# --- timing -----------------------------------------------------------------------------
HEARTBEAT_SECONDS: Final = 30.0
PRESENCE_TTL_SECONDS: Final = 90.0
"""A presence entry not refreshed for this long is gone: a dead node's users go offline."""
PRESENCE_REFRESH_STEP_SECONDS: Final = 1.0
"""An edge process refreshes its connections' presence in slices this far apart, all of
them once per third of the presence TTL."""
LAST_SEEN_TTL_SECONDS: Final = 30 * 24 * 3600.0
"""How long a user's last-seen time is kept after their last connect, refresh or disconnect."""

# --- live clients (WebSocket and SSE) ---------------------------------------------------
LIVE_SEND_QUEUE: Final = 1_000
"""Frames waiting for one slow live connection before it is dropped (``NOTIFY_WS_SEND_QUEUE``)."""
LIVE_BY_HOLDER_MIN: Final = 64
"""A batch of at least this many live events goes out as one envelope per holder of its
users (after one presence read); a smaller one as one message per user, which measured
faster there (``notify_core.live``; ``bench/live_publish_bench.py``, 8 hubs: per user
faster up to 50 events, per holder from 100)."""
LIVE_PRESENCE_CHUNK: Final = 1_000
"""Users whose holders one presence script call reads (several calls go in one round trip)."""
RESUME_MAX_MISSED: Final = 1_000
"""Most missed notifications a resume (``since`` / ``Last-Event-ID``) replays; when more
were missed the client gets ``resync`` and reloads its inbox instead."""
MAX_RESUME_ID: Final = 64
"""Characters of a ``since`` / ``Last-Event-ID`` value (a notification id has 36)."""
SSE_KEEPALIVE_SECONDS: Final = 15.0
"""An idle event stream gets a comment line this often, so proxies keep it open."""
SSE_CLOSE_TIMEOUT_SECONDS: Final = 5.0
"""A stream dropped (overflow, expired token) gets this long to take its last frame; then
its connection is reset."""
CLOSE_TOKEN_EXPIRED: Final = 4001
"""WebSocket close code: the token the connection was opened with expired (its ``exp``)."""

# --- email providers --------------------------------------------------------------------
EMAIL_DEFAULT_FROM: Final = "Notify <no-reply@localhost>"
EMAIL_MAX_HEADER_LINE: Final = 998
"""RFC 5322: longest header line, in characters, without its CRLF."""
SMTP_STARTTLS_MODES: Final = ("auto", "always", "never")
SMTP_POOL_DEFAULT: Final = 16
SMTP_POOL_MAX: Final = 100
SMTP_CONNECT_TIMEOUT_SECONDS: Final = 10.0
"""Connect, greeting, STARTTLS and AUTH of one new SMTP connection."""
SMTP_SEND_TIMEOUT_SECONDS: Final = 30.0
"""One whole SMTP transaction (MAIL, RCPT, DATA) on a pooled connection."""
SES_CONNECT_TIMEOUT_SECONDS: Final = 5.0
SES_READ_TIMEOUT_SECONDS: Final = 15.0
SES_MAX_POOL_CONNECTIONS: Final = 10
SENDGRID_DEFAULT_BASE_URL: Final = "https://api.sendgrid.com"
SENDGRID_TIMEOUT_SECONDS: Final = 15.0
SENDGRID_MAX_CONNECTIONS: Final = 20
SENDGRID_SIGNATURE_HEADER: Final = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER: Final = "X-Twilio-Email-Event-Webhook-Timestamp"
SENDGRID_SIGNATURE_MAX_AGE_SECONDS: Final = 600.0
"""Oldest signed timestamp of a SendGrid event post accepted (a replay window)."""
SENDGRID_SIGNATURE_MAX_SKEW_SECONDS: Final = 60.0
"""How far in the future a signed timestamp may be (clock skew)."""
SNS_CERT_HOST_PATTERN: Final = r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"
"""Hosts SNS signing certificates (and subscribe URLs) are accepted from."""
SNS_CERT_CACHE_SIZE: Final = 16
SNS_CERT_MAX_BYTES: Final = 64 * 1024
SNS_CERT_FETCH_TIMEOUT_SECONDS: Final = 10.0
SNS_SUBSCRIBE_TIMEOUT_SECONDS: Final = 10.0
"""Confirming an SNS subscription: the GET of its SubscribeURL."""
SENDGRID_WEBHOOK_PATH: Final = "/webhooks/sendgrid"
SES_WEBHOOK_PATH: Final = "/webhooks/ses"
PROVIDER_WEBHOOK_MAX_BYTES: Final = 8 * 1024 * 1024
"""Largest provider event post read (SendGrid batches up to a few thousand events)."""
PROVIDER_EVENT_RECEIPT_DAYS: Final = 7
"""Days an applied event id is remembered (SendGrid retries for 72 hours, SNS less)."""
PROVIDER_EVENT_PRUNE_BATCH: Final = 1_000
"""Expired receipts deleted at most per webhook post."""
MAX_SUPPRESSED_ADDRESS: Final = 254
"""Characters of an email address kept on the suppression list (RFC 5321's limit)."""
SUPPRESSIONS_DEFAULT_LIMIT: Final = 100
SUPPRESSIONS_MAX_LIMIT: Final = 1_000

# --- SMS providers ----------------------------------------------------------------------
TWILIO_DEFAULT_BASE_URL: Final = "https://api.twilio.com"
TWILIO_TIMEOUT_SECONDS: Final = 15.0
TWILIO_MAX_CONNECTIONS: Final = 20
TWILIO_WEBHOOK_PATH: Final = "/webhooks/twilio"
TWILIO_SIGNATURE_HEADER: Final = "X-Twilio-Signature"
TWILIO_CALLBACK_MAX_BYTES: Final = 64 * 1024
"""Largest status callback read (one message's form fields: a few hundred bytes)."""
SNS_SMS_CONNECT_TIMEOUT_SECONDS: Final = 5.0
SNS_SMS_READ_TIMEOUT_SECONDS: Final = 15.0
SNS_SMS_MAX_POOL_CONNECTIONS: Final = 10
MAX_PHONE_NUMBER: Final = 16
"""Characters of an E.164 number: "+" and at most 15 digits."""

# --- outgoing webhooks ------------------------------------------------------------------
WEBHOOK_TIMEOUT_SECONDS: Final = 10.0
"""Default of NOTIFY_WEBHOOK_TIMEOUT: the whole request (connect, send, answer)."""
WEBHOOK_CONNECT_TIMEOUT_SECONDS: Final = 5.0
"""Longest wait for one TCP (and TLS) connection, within the request's timeout."""
WEBHOOK_MAX_RESPONSE_BYTES: Final = 64 * 1024
"""Bytes of a receiver's answer read at most; the rest is dropped with the connection."""
WEBHOOK_ERROR_SNIPPET: Final = 200
"""Characters of a failed answer's body quoted in the delivery error."""
WEBHOOK_MAX_CONNECTIONS: Final = 100
WEBHOOK_KEEPALIVE_SECONDS: Final = 30.0
WEBHOOK_SECRET_PREFIX: Final = "whsec_"
WEBHOOK_SECRET_MIN_BYTES: Final = 24
"""Standard Webhooks: an HMAC secret has at least 24 random bytes..."""
WEBHOOK_SECRET_MAX_BYTES: Final = 64
"""... and at most 64."""
MAX_WEBHOOK_ID: Final = 255
WEBHOOK_USER_AGENT: Final = "Notify-Webhooks/1"

# --- push: Firebase Cloud Messaging -----------------------------------------------------
FCM_DEFAULT_ENDPOINT: Final = "https://fcm.googleapis.com"
"""Default of NOTIFY_FCM_ENDPOINT: the FCM HTTP v1 API."""
FCM_SCOPE: Final = "https://www.googleapis.com/auth/firebase.messaging"
"""The OAuth 2.0 scope an access token needs to send FCM messages."""
FCM_ASSERTION_LIFETIME_SECONDS: Final = 3_600
"""Lifetime of the signed JWT assertion (Google accepts at most an hour)."""
FCM_TOKEN_REFRESH_MARGIN_SECONDS: Final = 60.0
"""An access token is replaced this long before Google says it expires."""
FCM_TIMEOUT_SECONDS: Final = 10.0
"""One request (connect, send, answer) to FCM or to the token endpoint."""
FCM_CONNECT_TIMEOUT_SECONDS: Final = 5.0
FCM_MAX_CONNECTIONS: Final = 10
"""Connections per host; each HTTP/2 connection carries up to ~100 sends at once."""
FCM_MAX_ERROR_TEXT: Final = 500
"""Characters of FCM's error message kept in an outcome's detail."""

# --- engagement tracking ----------------------------------------------------------------
TRACK_OPEN_PATH: Final = "/t/o/"
"""Open pixels: ``/t/o/<token>.gif`` on the edge."""
TRACK_CLICK_PATH: Final = "/t/c/"
"""Tracked links: ``/t/c/<token>`` on the edge, a 302 to the signed target."""
MAX_TRACKED_URL: Final = 2_048
"""Characters; a longer link in a message is left as it is (not tracked)."""
MAX_TRACKING_TOKEN: Final = 4_096
"""Characters; a longer token is refused before any decoding."""

# --- digests ----------------------------------------------------------------------------
DIGEST_TYPE: Final = "digest"
"""The notification type of digest emails: their unsubscribe links switch it off by email
(``per_type.digest.email = false``), which stops the user's digests."""
DIGEST_TEMPLATE: Final = "digest"
"""The template a digest renders: publish ``digest`` (channel email) for a locale to
override the built-in one there."""
DIGEST_LEASE: Final = "digest-scheduler"
"""The lease (table ``leases``) that makes one node's DigestService the scheduler."""
DIGEST_ITEMS_SHOWN: Final = 5
"""Newest items listed per group of a digest; the rest are counted ("and 7 more")."""
DIGEST_RUNS_DEFAULT_LIMIT: Final = 20
DIGEST_RUNS_MAX_LIMIT: Final = 1_000
DIGEST_SYNC_BATCH: Final = 1_000
"""Schedules written per statement when preferences changed."""
DIGEST_RUN_MAX_ATTEMPTS: Final = 5
"""Takes of one run (it stopped on an error, or its node died) before it is given up."""
DIGEST_MAX_AHEAD_DAYS: Final = 31
"""How far ahead a requested run's clock (``as_of``) may be."""

# --- edge processes, connection limits, shutdown -----------------------------------------
CLOSE_GOING_AWAY: Final = 1001
"""WebSocket close code: the server is shutting down (RFC 6455); reconnect elsewhere."""
CLOSE_TRY_AGAIN_LATER: Final = 1013
"""WebSocket close code: this edge process holds its most connections; retry with backoff."""
CLOSE_TOO_MANY_FOR_USER: Final = 4009
"""WebSocket close code: the user already has ``NOTIFY_MAX_CONNECTIONS_PER_USER`` open."""
EDGE_PROCESSES_MAX: Final = 256
WORKER_PROCESSES_MAX: Final = 64
MAX_CONNECTIONS_DEFAULT: Final = 15_000
"""Default of ``NOTIFY_MAX_CONNECTIONS`` (per edge process), lowered to what the open-file
limit leaves when that is less."""
MAX_CONNECTIONS_PER_USER_DEFAULT: Final = 20
SHUTDOWN_GRACE_SECONDS: Final = 10.0
"""Default of ``NOTIFY_SHUTDOWN_GRACE``: how long connections get to close on SIGTERM."""
EDGE_FD_RESERVE: Final = 1_024
"""Open files an edge process keeps for everything but live connections: the database and
Redis pools, gRPC, plain HTTP requests, logs."""
EDGE_HTTP_HEADROOM: Final = 256
"""Plain HTTP requests (not WebSocket or SSE) in flight at once in one edge process; the
next is answered 503 until one finishes. Idle connections do not count."""
HTTP_HEADER_TIMEOUT_SECONDS: Final = 10.0
"""Default of ``NOTIFY_HTTP_HEADER_TIMEOUT``: how long a client has to send a request's
headers (from its connect, or from the first byte of a later request)."""
HTTP_IDLE_TIMEOUT_SECONDS: Final = 30.0
"""Default of ``NOTIFY_HTTP_IDLE_TIMEOUT``: how long a keep-alive connection may sit idle
between requests."""
CHILD_RESTART_BACKOFF_SECONDS: Final = (0.2, 10.0)
"""First and longest wait before a child process (edge or worker) that died is started
again."""
EDGE_DATABASE_POOL: Final = 3
"""Database connections an edge process keeps (and may add as many again under a burst):
it only reads the inbox, so eight of them stay well inside PostgreSQL's default
``max_connections`` of 100 beside the node's own pool."""
CHILD_START_TIMEOUT_SECONDS: Final = 60.0
"""How long ``notify up`` waits for its child processes (edge, workers) to be up."""
