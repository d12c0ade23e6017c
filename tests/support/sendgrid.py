"""A local HTTP server speaking SendGrid's v3 Mail Send API, and the ``sendgrid`` fixture.

The server (Starlette on uvicorn) checks the bearer key and the JSON shape the way SendGrid
documents them and answers with SendGrid's status codes, headers and
``{"errors": [{"message", "field", "help"}]}`` bodies. Some recipients make it answer
otherwise: ``ratelimited@`` 429, ``broken@`` 500, ``huge@`` 413, ``slow@`` after a second.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.asgi import serving_app

API_KEY = "SG.test-key.0123456789"


def _errors(status: int, *errors: tuple[str, str | None], **headers: str) -> JSONResponse:
    body = {"errors": [{"message": m, "field": f, "help": None} for m, f in errors]}
    return JSONResponse(body, status_code=status, headers=headers)


def _shape_errors(body: Any) -> list[tuple[str, str | None]]:
    """The validation SendGrid applies to the parts of the request we send."""
    out: list[tuple[str, str | None]] = []
    if not isinstance(body, dict):
        return [("Bad Request", None)]
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        out.append(("You must have at least one personalization.", "personalizations"))
    else:
        for i, p in enumerate(personalizations):
            to = p.get("to") if isinstance(p, dict) else None
            if not isinstance(to, list) or not to or not all("@" in t.get("email", "") for t in to):
                out.append(
                    (
                        "The to array is required for all personalization objects.",
                        f"personalizations.{i}.to",
                    )
                )
    sender = body.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        out.append(("The from object must be provided for every email send.", "from.email"))
    if not isinstance(body.get("subject"), str) or not body["subject"]:
        out.append(("The subject is required.", "subject"))
    content = body.get("content")
    if not isinstance(content, list) or not content:
        out.append(
            (
                "Unless a valid template_id is provided, the content parameter is required.",
                "content",
            )
        )
    else:
        types = [c.get("type") for c in content]
        if "text/plain" in types and types[0] != "text/plain":
            out.append(("If present, text/plain must be first, followed by text/html.", "content"))
        for i, c in enumerate(content):
            if not isinstance(c.get("value"), str) or not c["value"]:
                out.append(
                    (
                        "The content value must be a string at least one character in length.",
                        f"content.{i}.value",
                    )
                )
    for key in ("custom_args", "headers"):
        values = body.get(key, {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            out.append((f"{key} values must be strings.", key))
    return out


class FakeSendGrid:
    def __init__(self) -> None:
        self.accepted: list[tuple[str, dict[str, Any]]] = []

    async def mail_send(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _errors(
                401, ("The provided authorization grant is invalid, expired, or revoked", None)
            )
        if request.headers.get("content-type") != "application/json":
            return _errors(400, ("Content-Type should be application/json.", None))
        try:
            body = await request.json()
        except ValueError:
            return _errors(400, ("Bad Request", None))
        problems = _shape_errors(body)
        if problems:
            return _errors(400, *problems)
        to = body["personalizations"][0]["to"][0]["email"]
        if to.startswith("ratelimited@"):
            return _errors(429, ("too many requests", None), **{"Retry-After": "7"})
        if to.startswith("broken@"):
            return _errors(500, ("internal server error", None))
        if to.startswith("huge@"):
            return _errors(413, ("Payload Too Large", None))
        if to.startswith("slow@"):
            await asyncio.sleep(1.0)
        message_id = secrets.token_urlsafe(16)[:22]
        self.accepted.append((message_id, body))
        return Response(status_code=202, headers={"X-Message-Id": message_id})


@pytest.fixture
async def sendgrid() -> AsyncIterator[tuple[FakeSendGrid, str]]:
    fake = FakeSendGrid()
    app = Starlette(routes=[Route("/v3/mail/send", fake.mail_send, methods=["POST"])])
    async with serving_app(app, timeout_graceful_shutdown=2) as port:
        yield fake, f"http://127.0.0.1:{port}"
