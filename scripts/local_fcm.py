"""A local FCM HTTP v1 server for trying push without Google: the test suite's FCM fake
(the OAuth token endpoint and ``messages:send``, over TLS with HTTP/2), with a service
account and a CA of its own.

    .venv/bin/python scripts/local_fcm.py [--port 8443] [--dir /tmp/notify-fcm]

It writes ``fcm.env`` in ``--dir`` (``NOTIFY_FCM_CREDENTIALS``, ``NOTIFY_FCM_ENDPOINT`` and
``SSL_CERT_FILE`` naming its CA), prints it, then prints one JSON line per push it takes
until Ctrl-C. Start Notify with those variables and register a device with any token
(``POST /devices`` ``{"platform": "fcm", "token": "…"}``); tokens starting with
``unregistered-`` are answered as FCM answers a token that is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.support.fcm import FakeFcm, new_key, write_service_account
from tests.support.h2server import serving_h2


async def serve(port: int, directory: Path) -> None:
    key = new_key()
    fake = FakeFcm(public_key=key.public_key(), key_id="0123456789abcdef")
    async with serving_h2(fake.app(), port) as server:
        fake.token_uri = f"{server.url}/token"
        env = _write_env(directory, key, fake.token_uri, server.url, server.ca_file)
        print(env, end="", flush=True)
        print(f"# written to {directory / 'fcm.env'}; pushes follow", flush=True)
        seen = 0
        while True:
            while seen < len(fake.accepted):
                print(json.dumps(fake.accepted[seen].message), flush=True)
                seen += 1
            await asyncio.sleep(0.2)


def _write_env(directory: Path, key: RSAPrivateKey, token_uri: str, url: str, ca: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    credentials = write_service_account(directory, key, token_uri=token_uri)
    shutil.copyfile(ca, directory / "ca.pem")
    env = (
        f"NOTIFY_FCM_CREDENTIALS={credentials}\n"
        f"NOTIFY_FCM_ENDPOINT={url}\n"
        f"SSL_CERT_FILE={directory / 'ca.pem'}\n"
    )
    (directory / "fcm.env").write_text(env)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/notify-fcm"))
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.dir))


if __name__ == "__main__":
    main()
