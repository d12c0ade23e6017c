"""The ``notify`` command: ``up``, ``serve SERVICE``, ``migrate``, ``token USER``,
``dead-letters``, ``requeue`` and ``digest run|status`` (straight on the database and queue
of the configuration)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from notify_app.node import Node
from notify_app.services import SERVICES
from notify_app.settings import NodeSettings, load_settings
from notify_core.config import Settings
from notify_core.errors import ConfigError, NotifyError
from notify_core.reach import check_backends
from notify_core.redact import RedactingFormatter, redact


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notify", description="Notify: one API, every channel.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run every service and the edge in one process")
    serve = sub.add_parser("serve", help="run one service (mesh mode)")
    serve.add_argument("service", choices=SERVICES)
    sub.add_parser("migrate", help="apply database migrations")
    token = sub.add_parser("token", help="mint a user token (HS256, NOTIFY_JWT_SECRET)")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    dead = sub.add_parser("dead-letters", help="list deliveries whose last try failed")
    dead.add_argument("--channel")
    dead.add_argument("--limit", type=int, default=100)
    dead.add_argument("--json", action="store_true", help="one JSON object per line")
    requeue = sub.add_parser("requeue", help="give dead letters another full run of tries")
    requeue.add_argument("ids", nargs="*", help="delivery ids (from dead-letters)")
    requeue.add_argument("--all", action="store_true", help="every dead letter")
    requeue.add_argument("--channel")
    from digest_svc.cli import add_parser as add_digest_parser

    add_digest_parser(sub)
    return parser


async def _dead_letters(settings: Settings, args: argparse.Namespace) -> None:
    import json

    from delivery_svc.dead_letters import list_dead_letters, requeue_dead_letters
    from notify_core.constants import QUEUES
    from notify_core.db.engine import Database
    from notify_core.queue.factory import create_queue

    db = Database(settings.database_url)
    try:
        if args.command == "dead-letters":
            for d in await list_dead_letters(db, channel=args.channel, limit=args.limit):
                if args.json:
                    print(json.dumps(d))
                else:
                    print(
                        f"{d['id']}  {d['channel']:<8} {d['dead_at']}  tries={d['attempts']}  "
                        f"{d['user_id']}  {d['error']}"
                    )
            return
        queue = create_queue(settings.amqp_url, db, settings.namespace, list(QUEUES))
        await queue.start()
        try:
            count = await requeue_dead_letters(
                db, queue, ids=args.ids, channel=args.channel, everything=args.all
            )
        finally:
            await queue.close()
        print(f"notify: requeued {count} dead letters")
    finally:
        await db.close()


async def _run(
    settings: NodeSettings, services: tuple[str, ...], migrate: bool, workers: int = 0
) -> None:
    node = Node(settings, services=services, migrate=migrate, workers=workers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await node.start()
    print(
        f"notify: {', '.join(services)} up — http :{node.http_port or '-'} grpc :{node.grpc_port}",
        flush=True,
    )
    await stop.wait()
    await node.stop()


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def _fail(message: str, status: int) -> int:
    print(f"notify: {redact(message)}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command != "token":
            # Before logging is set up: an unreachable backend is one line, not the
            # connection library's log of its attempts.
            asyncio.run(check_backends(settings))
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", 2)
    except NotifyError as exc:
        return _fail(str(exc), 1)
    _configure_logging(settings.log_level)
    try:
        if args.command == "migrate":
            from notify_core.db.migrate import upgrade

            upgrade(settings.database_url)
            print("notify: database is up to date")
        elif args.command == "token":
            from notify_core.auth import issue_user_token

            if not settings.jwt_secret:
                raise ConfigError("NOTIFY_JWT_SECRET is not set")
            print(issue_user_token(settings.jwt_secret, args.user_id, args.ttl))
        elif args.command in ("dead-letters", "requeue"):
            asyncio.run(_dead_letters(settings, args))
        elif args.command == "digest":
            from digest_svc.assemble import DigestConfig
            from digest_svc.cli import main as digest_main

            config = DigestConfig(settings, settings.email, settings.digest)
            return asyncio.run(digest_main(config, args))
        elif args.command == "up":
            asyncio.run(_run(settings, SERVICES, migrate=True, workers=settings.workers))
        else:
            asyncio.run(_run(settings, (args.service,), migrate=False))
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", 2)
    except (NotifyError, OSError) as exc:
        return _fail(str(exc), 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
