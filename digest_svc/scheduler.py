"""The digest scheduler of one node: at most one across all nodes holds the lease and runs.

Every ``NOTIFY_DIGEST_INTERVAL`` (or at once when a run is requested on this node) a node
running DigestService looks (:meth:`DigestService.tick`):

1. it takes the lease ``digest-scheduler``, or renews it if it is its own; without it,
   nothing more (another node is the scheduler);
2. runs left ``running`` (their node died, or lost the lease) go back to the queue: they
   carry on from what they recorded;
3. the schedules are brought in step with the preferences;
4. if users are due now and no run is queued, a run is queued (trigger ``schedule``);
5. the queued runs are carried out, oldest first.

A run is given up (``failed``) after ``DIGEST_RUN_MAX_ATTEMPTS`` takes. When the node stops
during a run, the run goes back to the queue and the lease is released, so that another
node (or this one, restarted) carries on without waiting for the lease to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import datetime

from digest_svc import runs, store
from digest_svc.config_digest import DigestSettings
from digest_svc.runner import DigestRunner
from digest_svc.runs import Run
from notify_core.constants import DIGEST_LEASE, DIGEST_RUN_MAX_ATTEMPTS
from notify_core.db.engine import Database
from notify_core.db.lease import Clock, Lease
from notify_core.db.schema import utcnow
from notify_core.domain import DigestRunStatus
from notify_core.errors import NotifyError

log = logging.getLogger(__name__)


def node_name() -> str:
    """How this process names itself as a lease holder: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class DigestService:
    def __init__(
        self,
        database: Database,
        runner: DigestRunner,
        settings: DigestSettings,
        *,
        holder: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._db = database
        self.runner = runner
        self._settings = settings
        self._clock = clock
        self.lease = Lease(database, DIGEST_LEASE, holder or node_name(), settings.lease, clock)
        self._wake = asyncio.Event()
        self._ticking = asyncio.Lock()
        self.current: Run | None = None
        """The run this node is carrying out, if any."""

    @property
    def holder(self) -> str:
        return self.lease.holder

    async def run(self) -> None:
        """Look every interval until cancelled; a failing look is logged and retried."""
        try:
            while True:
                try:
                    await self.tick()
                except NotifyError as exc:
                    log.warning("digest scheduler: %s; trying again next time", exc)
                except Exception:
                    log.exception("digest scheduler failed; trying again next time")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.interval)
                self._wake.clear()
        finally:
            if self.lease.valid_until is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.lease.release())

    async def request(self, as_of: datetime | None) -> Run:
        """Queue a run "as of" ``as_of`` (None: now); this node starts it at once if it
        is the scheduler, else the scheduler does at its next look."""
        run = await runs.request_run(self._db, as_of, "manual")
        self._wake.set()
        return run

    async def tick(self) -> Run | None:
        """One look (see the module's doc); answers the last run carried out, if any.
        Looks of one node never overlap: a look queues again every run left running."""
        async with self._ticking:
            return await self._tick()

    async def _tick(self) -> Run | None:
        if not await self.lease.acquire():
            return None
        resumed = await runs.requeue_running(self._db)
        if resumed:
            log.warning("digest: %d interrupted run(s) queued again to carry on", resumed)
        await store.sync_schedules(self._db)
        now = self._clock()
        if not await runs.has_queued(self._db) and await store.due_count(self._db, now):
            await runs.request_run(self._db, now, "schedule")
        last = None
        while (run := await runs.take_next(self._db, self.holder)) is not None:
            last = await self._carry_out(run)
        return last

    async def _carry_out(self, run: Run) -> Run:
        if run.attempts > DIGEST_RUN_MAX_ATTEMPTS:
            return await runs.finish(
                self._db,
                run.id,
                DigestRunStatus.FAILED,
                run.counts,
                f"given up after {DIGEST_RUN_MAX_ATTEMPTS} attempts; last: {run.error}",
            )
        self.current = run
        log.info("digest run %s (%s, as of %s) started", run.id, run.trigger, run.as_of)
        try:
            counts = await self.runner.run(run, self.lease)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(runs.release(self._db, run.id, None))
            raise
        except Exception as exc:
            # Left running: the next look (here or on the next holder) queues it again.
            log.warning("digest run %s stopped: %s", run.id, exc)
            with contextlib.suppress(Exception):
                await runs.release(self._db, run.id, f"{type(exc).__name__}: {exc}", queue=False)
            raise
        finally:
            self.current = None
        done = await runs.finish(self._db, run.id, DigestRunStatus.SUCCEEDED, counts)
        seconds = done.duration or 0.0
        self.runner.metrics.run_finished(seconds, done.status)
        c = done.counts
        log.info(
            "digest run %s succeeded in %.1f s: due=%d sent=%d failed=%d skipped=%d %s "
            "items=%d timings=%s",
            run.id,
            seconds,
            c.due,
            c.sent,
            c.failed,
            c.skipped,
            c.skipped_by_reason,
            c.items,
            c.timings,
        )
        return done
