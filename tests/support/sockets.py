"""Which process holds which TCP socket, read from ``/proc`` (Linux): for the tests that
check where the kernel put a connection among edge processes sharing one port."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"
_ESTABLISHED = "01"


@dataclass(frozen=True)
class TcpEntry:
    local_port: int
    remote_port: int
    state: str
    inode: int


def tcp_table() -> list[TcpEntry]:
    entries = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(name)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            entries.append(
                TcpEntry(
                    int(local.rsplit(":", 1)[1], 16),
                    int(remote.rsplit(":", 1)[1], 16),
                    state,
                    int(inode),
                )
            )
    return entries


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except (FileNotFoundError, PermissionError):
        return set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def listening_pids(port: int, among: list[int]) -> set[int]:
    """Those of ``among`` holding a socket that listens on ``port``."""
    inodes = {e.inode for e in tcp_table() if e.local_port == port and e.state == _LISTEN}
    return {pid for pid in among if socket_inodes(pid) & inodes}


def holder(server_port: int, client_port: int, among: list[int]) -> int | None:
    """Which of ``among`` holds the server side of the connection from ``client_port``."""
    inodes = {
        e.inode
        for e in tcp_table()
        if e.local_port == server_port and e.remote_port == client_port and e.state == _ESTABLISHED
    }
    for pid in among:
        if socket_inodes(pid) & inodes:
            return pid
    return None
