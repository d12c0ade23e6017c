"""An edge process (``NOTIFY_EDGE_PROCESSES``) imports what it uses, not every service's
libraries: spawned, it imports the ``notify`` command's module, unpickles its settings and
the ``edge_node`` factory, and starts that node. Done here in a fresh interpreter (SQLite,
in-memory cache), after which none of the delivery providers' client libraries (the AWS
and Twilio SDKs, pywebpush, httpx), alembic or the CSS inliner may be loaded: the edge
loads them, if ever, at the request that needs them."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

from notify_app.node import edge_node
from notify_app.settings import load_settings

NOT_ON_THE_EDGE = (
    *("boto3", "botocore", "pywebpush", "aiohttp", "twilio", "httpx", "h2"),
    *("alembic", "css_inline"),
)

CHILD = """
import asyncio, pickle, socket, sys
import notify_app.cli  # the spawned child's main module

settings, factory = pickle.loads(sys.stdin.buffer.read())
sock = socket.socket()
sock.bind(("127.0.0.1", 0))

async def main() -> None:
    node = factory(settings, [sock])
    await node.start()
    try:
        assert node.http_port, "the edge did not listen"
    finally:
        await node.stop()

asyncio.run(main())
print(" ".join(sorted(m for m in sys.modules if "." not in m)))
"""


def test_an_edge_process_imports_no_provider_sdk_and_no_migrations(tmp_path: Path) -> None:
    env = {
        "NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'notify.db'}",
        "NOTIFY_API_KEYS": "edge-probe-key-0001",
        "NOTIFY_JWT_SECRET": "edge-probe-secret-0123456789abcdef",
        "NOTIFY_INGEST_TARGET": "127.0.0.1:1",
        "NOTIFY_HOST": "127.0.0.1",
        "NOTIFY_HTTP_PORT": "0",
        # Every provider configured: their settings cross into the child too.
        "NOTIFY_EMAIL_PROVIDER": "ses",
        "NOTIFY_SES_REGION": "eu-west-1",
        "NOTIFY_SES_SNS_TOPIC_ARNS": "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "NOTIFY_SMS_PROVIDER": "twilio",
        "NOTIFY_SMS_FALLBACK": "sns",
        "NOTIFY_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "NOTIFY_TWILIO_AUTH_TOKEN": "twilio-token",
        "NOTIFY_TWILIO_FROM": "+15005550006",
        "NOTIFY_SNS_REGION": "eu-west-1",
        "NOTIFY_PUBLIC_URL": "https://notify.example.com",
    }
    settings = load_settings(env, env_file=None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=pickle.dumps((settings, edge_node)),
        cwd=tmp_path,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    loaded = set(done.stdout.decode().split())
    assert "starlette" in loaded and "sqlalchemy" in loaded  # it did run the edge
    assert loaded.isdisjoint(NOT_ON_THE_EDGE), sorted(loaded & set(NOT_ON_THE_EDGE))
