"""The one error tree of Notify, and its mapping to gRPC status codes and HTTP statuses.

::

    NotifyError
    ├── InvalidArgument      bad input; ``field`` names what is wrong   → INVALID_ARGUMENT / 400
    │   └── TooLarge         a request body over its limit (not read past it)       → 413
    ├── Unauthenticated      missing or bad credentials                → UNAUTHENTICATED / 401
    ├── PermissionDenied     known caller, not allowed to do this      → PERMISSION_DENIED / 403
    ├── NotFound             no such thing for this caller              → NOT_FOUND / 404
    ├── Unavailable          a backend (database, queue, cache) is down → UNAVAILABLE / 503
    │   ├── QueueUnavailable
    │   ├── CacheUnavailable
    │   ├── BackendUnreachable  a configured backend does not answer at start (names its variable)
    │   └── LeaseLost        a node's lease (the digest scheduler's) went to another
    ├── TooManyConnections   a live-connection limit is reached → RESOURCE_EXHAUSTED / 503;
    │                        a WebSocket is closed with its ``ws_close_code``
    ├── ConfigError          a setting is missing or malformed (raised at start)
    └── DeliveryError        a provider did not take a message (delivery workers only)
        ├── PermanentDeliveryError   bad address, refused content, 4xx: never retried
        └── TransientDeliveryError   timeout, 5xx, throttling, circuit open: retried later

Third-party exceptions are translated once, at the adapter that calls the library
(``raise QueueUnavailable(...) from exc``); nothing above the adapters sees them.
"""

from __future__ import annotations

import grpc

INTERNAL_MESSAGE = "internal error (the server log has the details)"
"""All a caller is told of a fault of ours (a bug, an unexpected driver error), over gRPC
and HTTP alike: its details may hold SQL or other callers' rows."""


class NotifyError(Exception):
    """Base of every error Notify raises on purpose."""

    code: str = "internal"
    http_status: int = 500
    grpc_status: grpc.StatusCode = grpc.StatusCode.INTERNAL
    ws_close_code: int = 1011
    """The WebSocket close code when this error ends a connection (1011: internal error)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(NotifyError):
    """The input is wrong; ``field`` names the offending field (dotted path)."""

    code = "invalid_argument"
    http_status = 400
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field


class TooLarge(InvalidArgument):
    """A request body is longer than its limit; the rest of it was not read."""

    code = "too_large"
    http_status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("body", f"must be at most {limit} bytes")
        self.limit = limit


class Unauthenticated(NotifyError):
    code = "unauthenticated"
    http_status = 401
    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(NotifyError):
    code = "permission_denied"
    http_status = 403
    grpc_status = grpc.StatusCode.PERMISSION_DENIED


class NotFound(NotifyError):
    code = "not_found"
    http_status = 404
    grpc_status = grpc.StatusCode.NOT_FOUND


class Unavailable(NotifyError):
    code = "unavailable"
    http_status = 503
    grpc_status = grpc.StatusCode.UNAVAILABLE


class QueueUnavailable(Unavailable):
    """The work queue refused or lost a publish, or cannot be reached."""


class CacheUnavailable(Unavailable):
    """The cache / pub-sub / presence backend cannot be reached."""


class BackendUnreachable(Unavailable):
    """A configured database, Redis or RabbitMQ does not answer at start; the message names
    the variable and the URL (password hidden)."""


class LeaseLost(Unavailable):
    """This node no longer holds a lease it was working under (it stalled past the lease's
    time and another node took it): it stops, writing nothing more."""


class TooManyConnections(NotifyError):
    """A live connection is refused: this edge process holds as many as it may
    (``CLOSE_TRY_AGAIN_LATER``), the user has their most (``CLOSE_TOO_MANY_FOR_USER``), or
    the process is shutting down (``CLOSE_GOING_AWAY``); ``ws_close_code`` says which."""

    code = "too_many_connections"
    http_status = 503
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, ws_close_code: int) -> None:
        super().__init__(message)
        self.ws_close_code = ws_close_code


class ConfigError(NotifyError):
    """A setting is missing or malformed; the message names the variable."""

    code = "config"


class DeliveryError(NotifyError):
    """A provider did not take a message. ``provider`` names it; the message says why."""

    code = "delivery_failed"
    http_status = 502
    grpc_status = grpc.StatusCode.UNAVAILABLE
    permanent: bool = False

    def __init__(self, provider: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (a Retry-After header), if it said."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: a bad or suppressed address, a refused target, a 4xx."""

    permanent = True


class TransientDeliveryError(DeliveryError):
    """Worth another try later: a timeout, a 5xx, throttling, an open circuit."""
