"""How many live connections one edge process may hold.

Every connection is an open file, and a process may have at most ``RLIMIT_NOFILE`` of them
(20,000 on our machines, a hard limit). An edge process keeps ``EDGE_FD_RESERVE`` for its
database and Redis pools, gRPC and logs, and ``EDGE_HTTP_HEADROOM`` for plain HTTP requests
above its live connections; ``NOTIFY_MAX_CONNECTIONS`` gets the rest at most. Left unset it
is ``MAX_CONNECTIONS_DEFAULT``, lowered to what fits; set explicitly to more than fits, the
process refuses to start and says so.
"""

from __future__ import annotations

import logging
import resource

from notify_core.config import Settings
from notify_core.constants import EDGE_FD_RESERVE, EDGE_HTTP_HEADROOM, MAX_CONNECTIONS_DEFAULT
from notify_core.errors import ConfigError
from realtime_svc.hub import HubLimits

log = logging.getLogger(__name__)

_NR_OPEN_FALLBACK = 1 << 20
"""What an unlimited hard limit is taken as (Linux's default ``fs.nr_open``)."""


def fit_max_connections(requested: int | None, open_files: int) -> int:
    """The live-connection limit of one edge process allowed ``open_files`` open files:
    ``requested`` when it fits, else a :class:`ConfigError` naming the setting; unset,
    the default lowered to what fits."""
    room = open_files - EDGE_FD_RESERVE - EDGE_HTTP_HEADROOM
    if requested is None:
        if room < 1:
            raise ConfigError(
                f"NOTIFY_MAX_CONNECTIONS: the open-file limit of {open_files} leaves no room "
                f"for live connections ({EDGE_FD_RESERVE + EDGE_HTTP_HEADROOM} are kept for "
                "other files); raise it (ulimit -n)"
            )
        return min(MAX_CONNECTIONS_DEFAULT, room)
    if requested > room:
        raise ConfigError(
            f"NOTIFY_MAX_CONNECTIONS={requested} does not fit this process's open-file limit "
            f"of {open_files}: at most {max(room, 0)}, as "
            f"{EDGE_FD_RESERVE + EDGE_HTTP_HEADROOM} are kept for other files; lower it or "
            "raise the limit (ulimit -n)"
        )
    return requested


def raise_open_files_limit() -> int:
    """Lift this process's soft ``RLIMIT_NOFILE`` to its hard limit; answer the limit now
    in force (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _NR_OPEN_FALLBACK if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return target if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


def edge_limits(settings: Settings) -> HubLimits:
    """The hub limits of an edge process on ``settings`` (checked against this process's
    open-file limit, raised first to its hard limit)."""
    max_connections = fit_max_connections(settings.max_connections, raise_open_files_limit())
    return HubLimits(
        max_connections=max_connections,
        max_per_user=settings.max_connections_per_user,
        presence_ttl=settings.presence_ttl,
    )
