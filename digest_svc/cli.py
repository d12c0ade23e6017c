"""``notify digest run|status``: request a run and follow it, or look at runs, straight on
the database of the configuration (no node needs to be reachable).

``notify digest run [--as-of ISO] [--no-wait]`` queues a run. When a node is the digest
scheduler (it holds the lease) that node carries it out and this command follows it with a
progress bar; when none is, this command takes the lease and carries the run out itself.

``notify digest status [RUN_ID] [--limit N] [--json] [--no-follow]`` shows one run, or the
latest ones; a run that is going is followed with the progress bar until it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from digest_svc import runs, store
from digest_svc.runs import Run
from notify_core.constants import DIGEST_LEASE
from notify_core.convert import iso
from notify_core.db.engine import Database
from notify_core.db.lease import lease_holder
from notify_core.db.schema import utcnow
from notify_core.domain import DigestRunStatus
from notify_core.errors import InvalidArgument

if TYPE_CHECKING:
    from digest_svc.assemble import DigestConfig

POLL_SECONDS = 0.25
BAR_WIDTH = 30


def add_parser(sub: Any) -> None:
    """The ``digest`` command and its subcommands, on the ``notify`` parser's subparsers."""
    digest = sub.add_parser("digest", help="digest runs: request one, follow it, list them")
    commands = digest.add_subparsers(dest="digest_command", required=True)
    run = commands.add_parser("run", help="request a digest run now and follow it")
    run.add_argument("--as-of", help="the run's clock, ISO 8601 (default: now)")
    run.add_argument("--no-wait", action="store_true", help="queue it and return")
    status = commands.add_parser("status", help="show a run (default: the latest ones)")
    status.add_argument("run_id", nargs="?")
    status.add_argument("--limit", type=int, default=10)
    status.add_argument("--json", action="store_true", help="one JSON object per line")
    status.add_argument("--no-follow", action="store_true", help="do not follow a running run")


def parse_as_of(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument("--as-of", f"is not an ISO 8601 time: {raw!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- what is printed (pure) ---------------------------------------------------------------


def progress_line(run: Run, width: int = BAR_WIDTH) -> str:
    """``[#########.........]  31%  3,100/10,000 users  sent 3,000 skipped 90 failed 10
    12.3 s`` (or what the run is waiting for)."""
    c = run.counts
    if run.status == DigestRunStatus.QUEUED:
        return f"queued (as of {iso(run.as_of)}): waiting for the digest scheduler"
    share = 1.0 if c.due == 0 else min(1.0, c.processed / c.due)
    filled = round(share * width)
    bar = "#" * filled + "." * (width - filled)
    seconds = run.duration or 0.0
    return (
        f"[{bar}] {share:4.0%}  {c.processed:,}/{c.due:,} users  sent {c.sent:,}  "
        f"skipped {c.skipped:,}  failed {c.failed:,}  {seconds:.1f} s"
    )


def summary(run: Run) -> str:
    c = run.counts
    lines = [
        f"run {run.id}: {run.status} ({run.trigger}, as of {iso(run.as_of)}, "
        f"{run.attempts} attempt{'s' if run.attempts != 1 else ''})",
        f"  due {c.due:,}  sent {c.sent:,}  skipped {c.skipped:,}  failed {c.failed:,}  "
        f"notifications {c.items:,}",
    ]
    for title, reasons in (("skipped", c.skipped_by_reason), ("failed", c.failed_by_reason)):
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {title}: {reason}: {n:,}")
    if run.duration is not None:
        split = "  ".join(f"{k} {v:.2f} s" for k, v in c.timings.items())
        lines.append(f"  {run.duration:.1f} s ({split})")
    if run.error:
        lines.append(f"  error: {run.error}")
    return "\n".join(lines)


def run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "trigger": run.trigger,
        "as_of": iso(run.as_of),
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at) if run.started_at else None,
        "finished_at": iso(run.finished_at) if run.finished_at else None,
        "duration_seconds": run.duration,
        "holder": run.holder,
        "attempts": run.attempts,
        "error": run.error,
        **run.counts.values(),
    }


def table_row(run: Run) -> str:
    c = run.counts
    return (
        f"{run.id}  {run.status:<9} {run.trigger:<8} {iso(run.created_at)}  "
        f"due {c.due:<7,} sent {c.sent:<7,} skipped {c.skipped:<7,} failed {c.failed:,}"
    )


# --- following a run ------------------------------------------------------------------


async def follow(db: Database, run_id: str, out: TextIO) -> Run:
    """Show the run's progress until it ends: one line redrawn on a terminal, a line per
    change otherwise."""
    tty = out.isatty()
    last = ""
    while True:
        run = await runs.get_run(db, run_id)
        line = progress_line(run)
        if tty:
            out.write("\r" + line.ljust(len(last)))
        elif line.split("  ")[:2] != last.split("  ")[:2]:
            out.write(line + "\n")
        out.flush()
        last = line
        if run.done:
            if tty:
                out.write("\n")
            return run
        await asyncio.sleep(POLL_SECONDS)


async def _scheduler_alive(db: Database) -> bool:
    held = await lease_holder(db, DIGEST_LEASE)
    return held is not None and held[1] > utcnow()


async def _run_here(config: DigestConfig, db: Database, run_id: str, out: TextIO) -> Run:
    """No node is the scheduler: take the lease and carry the queued runs out here, with a
    digest delivery worker sending what they hand over until this run's digests have had
    their first try (those left to retry go to the nodes' delivery workers)."""
    from delivery_svc.api import FailoverEmail, create_email_providers, digest_worker
    from digest_svc.assemble import build_digest_service
    from notify_core.cache.factory import create_cache_backends
    from notify_core.constants import QUEUES
    from notify_core.queue.factory import create_queue
    from template_svc.api import Templates

    settings = config.settings
    backends = create_cache_backends(settings.redis_url, settings.namespace)
    queue = create_queue(settings.amqp_url, db, settings.namespace, list(QUEUES))
    await queue.start()
    primary, fallback = create_email_providers(config.email)
    email = FailoverEmail(
        primary, fallback, threshold=settings.breaker_threshold, reset=settings.breaker_reset
    )
    worker = digest_worker(settings, db, queue, email, config.digest.concurrency)
    service = build_digest_service(config, db, queue, backends, Templates(db), settings.public_url)
    out.write(f"no node is the digest scheduler: running it here ({service.holder})\n")
    work = asyncio.create_task(service.tick())
    sending = asyncio.create_task(worker.run())
    try:
        run = await follow(db, run_id, out)
        await work
        while True:
            if not await store.undelivered(db, run_id):
                return run
            await asyncio.sleep(POLL_SECONDS)
    finally:
        for task in (work, sending):
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        with contextlib.suppress(Exception):
            await service.lease.release()
        await email.close()
        await queue.close()
        await backends.close()


async def main(config: DigestConfig, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    db = Database(config.settings.database_url)
    try:
        if args.digest_command == "run":
            run = await runs.request_run(db, parse_as_of(args.as_of), "manual")
            out.write(f"queued run {run.id} (as of {iso(run.as_of)})\n")
            if args.no_wait:
                return 0
            if await _scheduler_alive(db):
                run = await follow(db, run.id, out)
            else:
                run = await _run_here(config, db, run.id, out)
            out.write(summary(run) + "\n")
            return 0 if run.status == DigestRunStatus.SUCCEEDED else 1
        if args.run_id is None:
            latest = await runs.list_runs(db, args.limit)
            if args.json:
                out.writelines(json.dumps(run_json(r)) + "\n" for r in latest)
                return 0
            going = next((r for r in latest if not r.done), None)
            if going is None or args.no_follow:
                out.writelines(table_row(r) + "\n" for r in latest)
                if not latest:
                    out.write("no digest runs yet\n")
                return 0
            run = going
        else:
            run = await runs.get_run(db, args.run_id)
        if args.json:
            out.write(json.dumps(run_json(run)) + "\n")
            return 0
        if not run.done and not args.no_follow:
            run = await follow(db, run.id, out)
        out.write(summary(run) + "\n")
        return 0
    finally:
        await db.close()
