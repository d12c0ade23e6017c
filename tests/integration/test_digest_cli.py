"""``notify digest run|status`` as an operator types them, on a node's SQLite database:
with no node up the command carries the run out itself; with one up, it follows the run
the node's scheduler carries out."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from notify_core.db.engine import Database
from notify_core.db.migrate import upgrade
from tests.support.digests import seed
from tests.support.nodes import API_KEY, JWT_SECRET
from tests.support.procs import ROOT, NotifyProcess
from tests.support.smtp import Inbox
from tests.support.waiting import eventually


def _env(url: str, smtp_port: int) -> dict[str, str]:
    return {
        "NOTIFY_DATABASE_URL": url,
        "NOTIFY_REDIS_URL": "",
        "NOTIFY_AMQP_URL": "",
        "NOTIFY_SMTP_HOST": "127.0.0.1",
        "NOTIFY_SMTP_PORT": str(smtp_port),
        "NOTIFY_SMTP_STARTTLS": "never",
        "NOTIFY_EMAIL_FROM": "Notify <n@x.test>",
        "NOTIFY_API_KEYS": API_KEY,
        "NOTIFY_JWT_SECRET": JWT_SECRET,
        "NOTIFY_DIGEST_INTERVAL": "0.2",
    }


async def _notify(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "notify_app.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _seeded(url: str, users: int) -> list[str]:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        return await seed(db, users)
    finally:
        await db.close()


async def test_run_with_no_node_up_runs_here_and_status_shows_it(
    tmp_path: Path,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    users = await _seeded(url, 3)
    env = _env(url, port)
    as_of = (datetime.now(UTC) + timedelta(days=1, hours=1)).isoformat()
    done = await _notify("digest", "run", "--as-of", as_of, env=env)
    assert done.returncode == 0, done.stderr
    assert "no node is the digest scheduler: running it here" in done.stdout
    assert "100%  3/3 users  sent 3" in done.stdout
    assert ": succeeded (manual" in done.stdout
    assert sorted(m["To"] for m in inbox.messages) == sorted(f"{u}@example.com" for u in users)

    table = await _notify("digest", "status", env=env)
    assert table.returncode == 0, table.stderr
    (line,) = table.stdout.splitlines()
    run_id = line.split()[0]
    assert "succeeded" in line and "sent 3" in line
    listed = await _notify("digest", "status", "--json", env=env)
    (row,) = [json.loads(x) for x in listed.stdout.splitlines()]
    assert (row["id"], row["sent"], row["due"], row["status"]) == (run_id, 3, 3, "succeeded")
    assert set(row["timings"]) == {"query", "render", "send", "record"}
    one = await _notify("digest", "status", run_id, env=env)
    assert one.stdout.startswith(f"run {run_id}: succeeded")

    bad = await _notify("digest", "run", "--as-of", "yesterday", env=env)
    assert bad.returncode == 1 and "--as-of" in bad.stderr
    missing = await _notify("digest", "status", "no-such-run", env=env)
    assert missing.returncode == 1 and "not found" in missing.stderr


async def test_run_with_a_node_up_follows_the_nodes_run(
    tmp_path: Path,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    users = await _seeded(url, 4)
    env = _env(url, port)
    node = await asyncio.to_thread(NotifyProcess(env, log=tmp_path / "node.log").start)
    try:
        as_of = (datetime.now(UTC) + timedelta(days=1, hours=1)).isoformat()
        done = await _notify("digest", "run", "--as-of", as_of, env=env)
        assert done.returncode == 0, done.stderr
        assert "running it here" not in done.stdout
        assert "100%  4/4 users  sent 4" in done.stdout
        # the node's digest worker sends what the run queued
        await eventually(lambda: len(inbox.messages), lambda n: n >= len(users))
        assert len(inbox.messages) == len(users)
    finally:
        await asyncio.to_thread(node.stop)
