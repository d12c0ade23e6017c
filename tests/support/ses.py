"""moto's SES server (a real HTTP server speaking the SESv2 API, with the sender verified),
the ``moto_url`` fixture (one server per test module), and what it holds."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support.procs import free_port

REGION = "eu-west-1"
SENDER = "no-reply@notify.example.com"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "sesv2",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
    )
    client.create_email_identity(EmailIdentity=SENDER)  # the sender is verified
    client.close()
    yield url
    server.stop()


def stored_messages(moto_url: str) -> dict[str, dict[str, Any]]:
    """Raw messages moto's SES holds, by MessageId (moto's model-data endpoint)."""
    with urllib.request.urlopen(f"{moto_url}/moto-api/data.json", timeout=10) as r:
        data = json.loads(r.read())
    return {m["id"]: m for m in data["ses"]["RawMessage"]}
