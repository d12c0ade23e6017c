"""A push service (RFC 8030) over TLS that checks what a web push sender must get right,
and the ``push_service`` fixture.

Each subscription it hands out is what a browser would hold: a fresh P-256 key pair and a
16-byte auth secret, with an endpoint on this server; :attr:`PushSubscription.token` is the
``{"endpoint", "keys"}`` JSON a browser gives the application. For every push it

- checks the VAPID ``Authorization`` (RFC 8292): the ES256 JWT verifies with the ``k``
  key, ``aud`` is this server's origin, ``exp`` is at most 24 hours away, ``sub`` is a
  ``mailto:`` or ``https:`` URL, and ``k`` is the key the subscription was made for
  (401 or 403 with the reason otherwise);
- checks ``TTL`` (required), ``Urgency`` and ``Topic`` (400 otherwise);
- decrypts the ``aes128gcm`` body (RFC 8291) with ``http_ece`` and the subscription's
  private key, and records the JSON it holds with those headers (:class:`Pushed`).

A subscription made with an ``answer`` gets that answer instead of being taken: ``gone``
410, ``missing`` 404, ``too-big`` 413, ``busy`` 429 with ``Retry-After: 30``, ``broken``
500, ``bad`` 400; ``accepted`` is taken with 202 and no ``Location``; ``slow`` waits for
:attr:`PushService.release` and then is taken.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece  # type: ignore[import-untyped]
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.h2server import serving_h2

MAX_BODY = 4096
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "gone": (410, {}, b"push subscription has unsubscribed or expired"),
    "missing": (404, {}, b"no such subscription"),
    "too-big": (413, {}, b"payload too large"),
    "busy": (429, {"retry-after": "30"}, b"too many requests"),
    "broken": (500, {}, b"internal error"),
    "bad": (400, {}, b"malformed push message"),
}


SUBJECT = "mailto:ops@example.com"


def vapid_env(tmp_path: Path, name: str = "vapid.pem", **extra: str) -> dict[str, str]:
    """A fresh VAPID key in ``tmp_path/name`` and the settings naming it."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / name
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {"NOTIFY_VAPID_PRIVATE_KEY": str(path), "NOTIFY_VAPID_SUBJECT": SUBJECT, **extra}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PushSubscription:
    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    answer: str
    server_key: str | None
    """The ``applicationServerKey`` it was made for; None accepts any."""

    @property
    def keys(self) -> dict[str, str]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"auth": b64url(self.auth), "p256dh": b64url(point)}

    @property
    def token(self) -> str:
        """The device token as stored: canonical JSON of the subscription."""
        value = {"endpoint": self.endpoint, "keys": self.keys}
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class Pushed:
    """One push taken: its subscription, the decrypted message and the headers."""

    subscription: str
    message: dict[str, Any]
    ttl: int
    urgency: str
    topic: str | None
    claims: dict[str, Any]
    vapid_key: str
    headers: dict[str, str]
    size: int
    """Of the encrypted body."""


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class PushService:
    origin: str = ""
    ca_file: str = ""
    subscriptions: dict[str, PushSubscription] = field(default_factory=dict)
    pushed: list[Pushed] = field(default_factory=list)
    attempts: list[tuple[str, int]] = field(default_factory=list)
    """Every request: (subscription id, status answered)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def subscribe(self, answer: str = "ok", server_key: str | None = None) -> PushSubscription:
        sid = f"{answer}-{uuid.uuid4().hex}"
        sub = PushSubscription(
            id=sid,
            endpoint=f"{self.origin}/push/{sid}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=os.urandom(16),
            answer=answer,
            server_key=server_key,
        )
        self.subscriptions[sid] = sub
        return sub

    def app(self) -> Starlette:
        async def push(request: Request) -> Response:
            sid = request.path_params["sid"]
            try:
                status, headers, body = await self._push(request, sid)
            except Refused as exc:
                status, headers, body = exc.status, {}, str(exc).encode()
            self.attempts.append((sid, status))
            return Response(body, status_code=status, headers=headers)

        return Starlette(routes=[Route("/push/{sid}", push, methods=["POST"])])

    async def _push(self, request: Request, sid: str) -> tuple[int, dict[str, str], bytes]:
        sub = self.subscriptions.get(sid)
        if sub is None:
            return 404, {}, b"no such subscription"
        claims, key = self._check_vapid(request.headers.get("authorization", ""), sub)
        ttl, urgency, topic = _check_headers(request)
        if sub.answer == "slow":
            await self.release.wait()
        elif sub.answer in _ANSWERS:
            return _ANSWERS[sub.answer]
        status, headers = 201, {"location": f"{self.origin}/message/{uuid.uuid4().hex}"}
        if sub.answer == "accepted":
            status, headers = 202, {}
        body = await request.body()
        if len(body) > MAX_BODY:
            return 413, {}, b"payload too large"
        if request.headers.get("content-encoding") != "aes128gcm":
            raise Refused(400, "content-encoding must be aes128gcm")
        try:
            plain = http_ece.decrypt(
                body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
            )
        except Exception as exc:
            raise Refused(400, f"cannot decrypt the payload: {exc!r}") from None
        self.pushed.append(
            Pushed(
                sid,
                json.loads(plain),
                ttl,
                urgency,
                topic,
                claims,
                key,
                dict(request.headers),
                len(body),
            )
        )
        return status, headers, b""

    def _check_vapid(self, header: str, sub: PushSubscription) -> tuple[dict[str, Any], str]:
        match = re.fullmatch(r"vapid\s+(.+)", header.strip())
        if match is None:
            raise Refused(401, "Authorization must be vapid t=..., k=...")
        params = dict(
            part.strip().split("=", 1) for part in match.group(1).split(",") if "=" in part
        )
        token, k = params.get("t", ""), params.get("k", "")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(k))
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except (ValueError, jwt.PyJWTError) as exc:
            raise Refused(401, f"VAPID JWT refused: {exc}") from None
        if claims["exp"] - time.time() > 24 * 3600:
            raise Refused(401, "VAPID exp is more than 24 hours away")
        if not re.match(r"(mailto:|https://)", str(claims["sub"])):
            raise Refused(401, "VAPID sub must be a mailto: or https: URL")
        if sub.server_key is not None and k != sub.server_key:
            raise Refused(403, "the VAPID key is not the one this subscription was made for")
        return claims, k


def _check_headers(request: Request) -> tuple[int, str, str | None]:
    raw_ttl = request.headers.get("ttl")
    if raw_ttl is None or not raw_ttl.isdigit():
        raise Refused(400, "TTL is required (delta-seconds)")
    urgency = request.headers.get("urgency", "normal")
    if urgency not in ("very-low", "low", "normal", "high"):
        raise Refused(400, f"unknown Urgency {urgency!r}")
    topic = request.headers.get("topic")
    if topic is not None and not _TOPIC.match(topic):
        raise Refused(400, f"Topic must be 1 to 32 URL-safe base64 characters, got {topic!r}")
    return int(raw_ttl), urgency, topic


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    """A push service at ``https://localhost:<port>`` (``ca_file`` is its CA, PEM)."""
    service = PushService()
    async with serving_h2(service.app()) as server:
        service.origin, service.ca_file = server.url, server.ca_file
        try:
            yield service
        finally:
            service.release.set()
