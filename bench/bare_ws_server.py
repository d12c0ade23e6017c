"""The baseline of ``ws_scale_bench.py``: a bare ``websockets`` server holding connections.

``--procs`` processes share one port with ``SO_REUSEPORT``, as Notify's edge processes do:
the parent binds the port first without listening (which picks it when ``--port`` is 0
and holds it), then each child binds it the same way, listens, and serves connections with
the ``websockets`` library's asyncio server: no per-message deflate, a 64 KiB message
limit, a ping every ``--ping-interval`` seconds (Notify's edge pings every 30 s too).

A connection on any path, with ``?user=<id>``, gets one opening frame (Notify's ``pending``
with nothing pending) and is then held. It does nothing else until one of these arrives on
the Redis pub/sub channel ``--channel`` (every process subscribes):

* ``{"to": "*", "text": "..."}``: the text goes to every connection the process holds, with
  ``websockets.asyncio.server.broadcast`` (written to each socket without waiting); then
  the process publishes on ``<channel>:done`` how many it wrote to, in how long, and when
  it finished (``{"pid", "connections", "seconds", "finished"}``);
* ``{"to": "<user>", "text": "..."}``: the text goes to that user's connection, if here.

No authentication, no storage, no queue: the least a server can do for the same job.
Prints ``bare: listening on :<port>`` once every process listens; SIGTERM or SIGINT stops
them all (a child also stops when the parent disappears).

    .venv/bin/python bench/bare_ws_server.py --port 8765 --procs 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import resource
import signal
import socket
import sys
import time
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

OPENING = json.dumps(
    {"type": "pending", "notifications": [], "unread_count": 0}, separators=(",", ":")
)
"""The first frame of every connection (what Notify sends a user with an empty inbox)."""
MAX_MESSAGE_BYTES = 64 * 1024
LISTEN_BACKLOG = 4096

log = logging.getLogger("bare")


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """An IPv4 TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def raise_open_files_limit() -> int:
    """Lift the soft ``RLIMIT_NOFILE`` to the hard limit; answer the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


class Held:
    """The connections one process holds: all of them, and each by its user."""

    def __init__(self) -> None:
        self.everyone: set[ServerConnection] = set()
        self.by_user: dict[str, ServerConnection] = {}

    async def handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        user = parse_qs(urlsplit(path).query).get("user", [""])[0]
        self.everyone.add(ws)
        if user:
            self.by_user[user] = ws
        try:
            await ws.send(OPENING)
            async for _ in ws:  # read (and drop) whatever the client sends
                pass
        except ConnectionClosed:
            pass
        finally:
            self.everyone.discard(ws)
            if user and self.by_user.get(user) is ws:
                del self.by_user[user]

    def on_message(self, raw: bytes) -> dict[str, Any] | None:
        """Act on one control message; for a broadcast, answer how many connections it
        went to and when it was handed to the last of them."""
        try:
            message: dict[str, Any] = json.loads(raw)
            to, text = str(message["to"]), str(message["text"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed control message %r", raw[:200])
            return None
        if to == "*":
            started = time.perf_counter()
            broadcast(self.everyone, text)
            return {
                "pid": os.getpid(),
                "connections": len(self.everyone),
                "seconds": time.perf_counter() - started,
                "finished": time.time(),
            }
        if (ws := self.by_user.get(to)) is not None:
            broadcast([ws], text)
        return None


async def _listen_redis(redis_url: str, channel: str, held: Held) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            if message.get("type") == "message":
                report = held.on_message(message["data"])
                if report is not None:
                    await client.publish(f"{channel}:done", json.dumps(report))
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def _serve_child(args: argparse.Namespace, port: int, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    held = Held()
    sock = bind_reuse_port(args.host, port)
    redis_task = asyncio.create_task(_listen_redis(args.redis_url, args.channel, held))
    try:
        async with serve(
            held.handler,
            sock=sock,
            backlog=LISTEN_BACKLOG,
            compression=None,
            max_size=MAX_MESSAGE_BYTES,
            ping_interval=args.ping_interval,
            ping_timeout=args.ping_interval,
        ):
            await asyncio.sleep(0.2)  # let the Redis subscription become active
            if redis_task.done():
                redis_task.result()
            pipe.send(os.getpid())
            loop.add_reader(pipe.fileno(), stop.set)  # readable: the parent is gone
            await stop.wait()
            loop.remove_reader(pipe.fileno())
    finally:
        redis_task.cancel()
        await asyncio.gather(redis_task, return_exceptions=True)
        sock.close()


def run_child(args: argparse.Namespace, port: int, pipe: Connection) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s bare[%(process)d]: %(message)s")
    raise_open_files_limit()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_child(args, port, pipe))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free one")
    parser.add_argument("--procs", type=int, default=8, help="processes sharing the port")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--channel", default="bare-ws-bench", help="Redis pub/sub channel")
    parser.add_argument("--ping-interval", type=float, default=30.0)
    args = parser.parse_args()

    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    held = bind_reuse_port(args.host, args.port)  # picks and holds the port
    port = int(held.getsockname()[1])
    ctx = multiprocessing.get_context("spawn")
    children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        for i in range(args.procs):
            ours, theirs = ctx.Pipe(duplex=True)
            child = ctx.Process(
                target=run_child, args=(args, port, theirs), name=f"bare-{i}", daemon=True
            )
            child.start()
            theirs.close()
            children.append((child, ours))
        pids = []
        for proc, pipe in children:
            while not stopping and not pipe.poll(0.1):
                if not proc.is_alive():
                    raise SystemExit(f"bare: process {proc.name} exited with {proc.exitcode}")
            if stopping:
                break
            pids.append(pipe.recv())
        if not stopping:
            print(f"bare: listening on :{port} (pids {pids})", flush=True)
        while not stopping:
            time.sleep(0.5)  # a signal ends the sleep early
            for proc, _ in children:
                if not proc.is_alive():
                    print(f"bare: process {proc.name} exited with {proc.exitcode}", flush=True)
                    stopping = True
    finally:
        for proc, _ in children:
            if proc.is_alive():
                proc.terminate()
        for proc, pipe in children:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            pipe.close()
        held.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
