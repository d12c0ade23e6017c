"""Request bodies are bounded before they are read, on every JSON endpoint: a body past the
limit is answered 413 with the error shape while the client is still sending it (the edge
stops reading there), and a Content-Length past the limit is answered before any of the
body is sent."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest

from notify_core.auth import issue_user_token
from notify_core.constants import MAX_BODY_BYTES
from tests.support.ids import uid
from tests.support.nodes import JWT_SECRET, Env

STREAMED = 16 * MAX_BODY_BYTES
"""What a client offers to send: the edge must answer long before taking all of it."""
CHUNK = 64 * 1024
HANG_GUARD = 60.0
"""Only so that a server that never answers fails the test instead of hanging it."""

ENDPOINTS = [
    ("POST", "/notifications/send", "producer"),
    ("PUT", "/preferences", "user"),
    ("PUT", "/users/{u}/preferences", "producer"),
    ("POST", "/devices", "user"),
    ("POST", "/users/{u}/devices", "producer"),
    ("PUT", "/topics/{u}/subscribers", "producer"),
    ("PUT", "/templates/{u}/inapp", "producer"),
    ("POST", "/templates/render", "producer"),
    ("POST", "/users/{u}/unsubscribe-links", "producer"),
]


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    sent: int
    """Body bytes the client had written when the answer came."""


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
    length = int({k.lower(): v for k, v in headers.items()}["content-length"])
    return status, json.loads(await reader.readexactly(length))


async def _request(env: Env, head: str, stream: bool) -> Answer:
    """Send ``head``; then, if ``stream``, a chunked body of ``STREAMED`` bytes for as long
    as no answer has come."""
    reader, writer = await asyncio.open_connection("127.0.0.1", env.node.http_port)
    sent = 0
    try:
        writer.write(head.encode())
        answer = asyncio.create_task(_read_answer(reader))
        chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
        try:
            while stream and not answer.done() and sent < STREAMED:
                writer.write(chunk)
                await writer.drain()
                sent += CHUNK
        except ConnectionError:
            pass  # the edge may close the connection once it has answered
        status, body = await asyncio.wait_for(answer, HANG_GUARD)
        return Answer(status, body, sent)
    finally:
        writer.close()


def _head(env: Env, method: str, path: str, who: str, user: str, framing: str) -> str:
    token = env.producer["authorization"]
    if who == "user":
        token = f"Bearer {issue_user_token(JWT_SECRET, user)}"
    return (
        f"{method} {path.replace('{u}', user)} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"authorization: {token}\r\ncontent-type: application/json\r\n{framing}\r\n"
    )


@pytest.mark.parametrize(("method", "path", "who"), ENDPOINTS)
async def test_a_streamed_body_past_the_limit_is_413_before_it_is_all_sent(
    env: Env, method: str, path: str, who: str
) -> None:
    user = uid("big")
    head = _head(env, method, path, who, user, "transfer-encoding: chunked\r\n")
    answer = await _request(env, head, stream=True)
    assert answer.status == 413
    assert answer.body == {
        "error": {"code": "too_large", "message": f"body: must be at most {MAX_BODY_BYTES} bytes"}
    }
    assert answer.sent < STREAMED


@pytest.mark.parametrize(("method", "path", "who"), ENDPOINTS)
async def test_a_content_length_past_the_limit_is_413_before_any_body(
    env: Env, method: str, path: str, who: str
) -> None:
    user = uid("big")
    head = _head(env, method, path, who, user, f"content-length: {100 * MAX_BODY_BYTES}\r\n")
    answer = await _request(env, head, stream=False)
    assert answer.status == 413
    assert answer.body["error"]["code"] == "too_large"


async def test_a_body_at_the_limit_is_read(env: Env) -> None:
    body = {"user_id": "u1", "type": "comment", "title": "t", "message": "m", "data": {}}
    raw = json.dumps(body).encode()
    raw = raw[:-1] + b" " * (MAX_BODY_BYTES - len(raw)) + b"}"
    r = await env.http.post(
        "/notifications/send",
        content=raw,
        headers={**env.producer, "content-type": "application/json"},
    )
    assert r.status_code == 202, r.text
