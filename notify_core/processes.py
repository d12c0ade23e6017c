"""Child processes of a node: started, watched, restarted and stopped by one supervisor.

The edge processes (``NOTIFY_EDGE_PROCESSES``) and the worker processes
(``NOTIFY_WORKER_PROCESSES``) are both children of the node process, spawned with
``multiprocessing`` (spawn: nothing of the parent's event loop or connections is
inherited). Each child runs one :class:`ChildNode`: it starts it, sends its pid over a
pipe (the parent waits for that before it calls the children up), and stops it on SIGTERM,
SIGINT or when the parent's end of the pipe closes (the parent went away). A child that
dies is started again, after a back-off that grows while it keeps dying. On stop each child
gets SIGTERM and ``grace`` seconds (plus a margin) to exit before it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from notify_core.constants import CHILD_RESTART_BACKOFF_SECONDS, CHILD_START_TIMEOUT_SECONDS
from notify_core.errors import ConfigError

log = logging.getLogger(__name__)

_STOP_MARGIN_SECONDS = 5.0
"""Beyond the grace period, how long a child gets to exit before it is killed."""
_HEALTHY_AFTER_SECONDS = 30.0
"""A child that ran this long before dying is restarted after the shortest back-off."""


class ChildNode(Protocol):
    """What a child process runs: started, then stopped."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ChildMain = Callable[..., None]
"""A child's entry point, called with the supervisor's ``args`` and then the child's end
of the pipe; module-level, so that it pickles into the spawned process."""


@dataclass
class _Child:
    slot: int
    process: BaseProcess
    pipe: Connection
    """The parent's end: the child sends its pid once it is up; EOF means it is gone."""


class ChildProcesses:
    """``count`` children of one kind ("edge", "worker"), each running ``main(*args, pipe)``."""

    def __init__(self, kind: str, count: int, main: ChildMain, *, grace: float) -> None:
        self.kind = kind
        self._count = count
        self._main = main
        self._grace = grace
        self._args: tuple[Any, ...] = ()
        self._ctx = multiprocessing.get_context("spawn")
        self._children: dict[int, _Child] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [c.process.pid for c in self._children.values() if c.process.pid is not None]

    async def start(self, *args: Any) -> None:
        """Start every child with ``args`` and return once each is up; raise if one fails."""
        self._args = args
        try:
            children = [self._spawn(slot) for slot in range(self._count)]
            async with asyncio.timeout(CHILD_START_TIMEOUT_SECONDS):
                for child in children:
                    await self._until_up(child)
        except BaseException:
            await self.stop()
            raise
        self._watchers = [
            asyncio.create_task(self._watch(c), name=f"{self.kind}-{c.slot}") for c in children
        ]

    async def stop(self) -> None:
        """SIGTERM to every child; wait for them to drain (the grace period, then a
        margin), kill what is left."""
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        children = list(self._children.values())
        for child in children:
            if child.process.is_alive():
                child.process.terminate()
        limit = self._grace + _STOP_MARGIN_SECONDS
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await asyncio.gather(*(_exited(c.process) for c in children))
        for child in children:
            if child.process.is_alive():
                log.error(
                    "%s process %s did not exit within %.0f s: killed", self.kind, child, limit
                )
                child.process.kill()
            await asyncio.to_thread(child.process.join, 5)
            child.pipe.close()
        self._children.clear()

    def _spawn(self, slot: int) -> _Child:
        ours, theirs = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=self._main,
            args=(*self._args, theirs),
            name=f"notify-{self.kind}-{slot}",
            daemon=True,
        )
        process.start()
        theirs.close()
        child = _Child(slot, process, ours)
        self._children[slot] = child
        return child

    async def _until_up(self, child: _Child) -> None:
        await _readable(child.pipe.fileno())
        try:
            pid = child.pipe.recv()
        except EOFError:
            child.process.join(5)
            raise OSError(
                f"{self.kind} process {child.slot} exited with {child.process.exitcode} while "
                "starting (its log says why)"
            ) from None
        log.info("%s process %d up (pid %s)", self.kind, child.slot, pid)

    async def _watch(self, child: _Child) -> None:
        """Restart the child of this slot each time it dies, until the node stops."""
        loop = asyncio.get_running_loop()
        first, longest = CHILD_RESTART_BACKOFF_SECONDS
        backoff = first
        while not self._stopping:
            started = loop.time()
            await _exited(child.process)
            child.pipe.close()
            if self._stopping:
                return
            if loop.time() - started >= _HEALTHY_AFTER_SECONDS:
                backoff = first
            log.warning(
                "%s process %d (pid %s) exited with %s; starting another in %.1f s",
                self.kind,
                child.slot,
                child.process.pid,
                child.process.exitcode,
                backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, longest)
            child = self._spawn(child.slot)
            try:
                await self._until_up(child)
            except OSError as exc:
                log.error("%s", exc)


async def _readable(fd: int) -> None:
    """Wait until ``fd`` is readable (data, or the other end closed)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _exited(process: BaseProcess) -> None:
    """Wait until ``process`` has exited (its sentinel becomes readable)."""
    if process.exitcode is None:
        await _readable(process.sentinel)
    await asyncio.to_thread(process.join, 5)


# --- the child side ------------------------------------------------------------------------


def run_child(kind: str, log_level: str, node: Callable[[], ChildNode], pipe: Connection) -> None:
    """A child's life: logging set up, ``node()`` built, started and run until SIGTERM,
    SIGINT or the parent going away, then stopped."""
    logging.basicConfig(
        level=log_level,
        format=f"%(asctime)s %(levelname)s %(name)s[{kind} %(process)d]: %(message)s",
    )
    try:
        asyncio.run(_serve(node, pipe))
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        raise SystemExit(2) from None
    except OSError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


async def _serve(make: Callable[[], ChildNode], pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    node = make()
    try:
        await node.start()
        pipe.send(os.getpid())
        # Readable only when the parent is gone (it never writes after start).
        loop.add_reader(pipe.fileno(), stop.set)
        await stop.wait()
        loop.remove_reader(pipe.fileno())
    finally:
        await node.stop()
