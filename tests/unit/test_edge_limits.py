"""How many live connections an edge process may hold, and the sockets edge processes share."""

from __future__ import annotations

import socket

import pytest

from notify_core.constants import EDGE_FD_RESERVE, EDGE_HTTP_HEADROOM, MAX_CONNECTIONS_DEFAULT
from notify_core.errors import ConfigError
from realtime_svc.edge_processes import loopback_target
from realtime_svc.edge_server import bind_sockets
from realtime_svc.limits import fit_max_connections

KEPT = EDGE_FD_RESERVE + EDGE_HTTP_HEADROOM


@pytest.mark.parametrize(
    ("requested", "open_files", "expected"),
    [
        (None, 20_000, MAX_CONNECTIONS_DEFAULT),  # the default fits
        (None, 4_096, 4_096 - KEPT),  # the default lowered to what fits
        (None, KEPT + 1, 1),
        (18_000, 20_000, 18_000),
        (20_000 - KEPT, 20_000, 20_000 - KEPT),  # exactly fits
        (5, 1_000_000, 5),
    ],
)
def test_fit_max_connections(requested: int | None, open_files: int, expected: int) -> None:
    assert fit_max_connections(requested, open_files) == expected


@pytest.mark.parametrize(
    ("requested", "open_files"),
    [(20_000 - KEPT + 1, 20_000), (15_000, 1_024), (None, KEPT), (None, 256)],
)
def test_a_limit_that_does_not_fit_names_the_setting(
    requested: int | None, open_files: int
) -> None:
    with pytest.raises(ConfigError, match="NOTIFY_MAX_CONNECTIONS"):
        fit_max_connections(requested, open_files)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0.0.0.0", "127.0.0.1:50051"),
        ("", "127.0.0.1:50051"),
        ("::", "[::1]:50051"),
        ("10.0.0.7", "10.0.0.7:50051"),
        ("fd00::7", "[fd00::7]:50051"),
        ("edge.internal", "edge.internal:50051"),
    ],
)
def test_loopback_target(host: str, expected: str) -> None:
    assert loopback_target(host, 50051) == expected


def test_reuse_port_sockets_share_one_port_and_listen_together() -> None:
    first = bind_sockets("127.0.0.1", 0, reuse_port=True)
    port = first[0].getsockname()[1]
    second = bind_sockets("127.0.0.1", port, reuse_port=True)
    try:
        for sock in (*first, *second):
            sock.listen()
        assert second[0].getsockname()[1] == port
        with pytest.raises(OSError):
            bind_sockets("127.0.0.1", port)  # without SO_REUSEPORT the port is taken
    finally:
        for sock in (*first, *second):
            sock.close()


def test_port_zero_binds_every_address_on_one_port() -> None:
    socks = bind_sockets("localhost", 0)
    try:
        assert len({s.getsockname()[1] for s in socks}) == 1
        assert all(s.type == socket.SOCK_STREAM for s in socks)
    finally:
        for sock in socks:
            sock.close()
