"""A local server speaking APNs's HTTP/2 provider API with token auth, and its fixtures.

The server (Starlette on hypercorn, TLS + HTTP/2, :mod:`tests.support.h2server`) checks
what APNs checks: the provider JWT (ES256 under the test key's public half, its ``kid``,
``iss`` the team id, ``iat`` at most an hour old), ``apns-topic`` (the test bundle id),
``apns-push-type``, ``apns-priority``, ``apns-expiration``, ``apns-collapse-id`` (64 bytes
at most), ``apns-id`` (a UUID), the device token (hex) and the payload (a JSON object with
``aps``, 4 KB at most). It answers with APNs's statuses, ``apns-id`` header and
``{"reason": ...}`` bodies (410 adds ``timestamp``), and records what it took.

Some device tokens make it answer otherwise (see :data:`SPECIAL`): 410 ``Unregistered``,
400 ``BadDeviceToken`` / ``DeviceTokenNotForTopic``, 429 ``TooManyRequests``, 500, 503
with ``Retry-After``, 403 ``ExpiredProviderToken`` once per JWT (that JWT is then expired
for every token, as at APNs) or always, and one whose stream is never answered.

The ``apns`` fixture serves it behind a :class:`~tests.support.relay.TcpRelay` (so a test
can cut the connection) with ``SSL_CERT_FILE`` naming the test CA; ``apns_key`` writes a
fresh ``.p8`` key (EC P-256, PKCS#8 PEM) in a temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.h2server import serving_h2, trusting
from tests.support.relay import TcpRelay, relaying

KEY_ID = "KEY1234567"
TEAM_ID = "TEAM987654"
TOPIC = "com.example.notify"
MAX_PAYLOAD = 4096
TOKEN_LIFETIME = 3600


def _token(code: str) -> str:
    return code.ljust(64, "0")


GONE = _token("410")
BAD_TOKEN = _token("400b")
OTHER_APP = _token("400d")
THROTTLED = _token("429")
BROKEN = _token("500")
UNAVAILABLE = _token("503")
EXPIRES_ONCE = _token("403e")
ALWAYS_EXPIRED = _token("403a")
UNANSWERED = _token("ffff")
SPECIAL = (GONE, BAD_TOKEN, OTHER_APP, THROTTLED, BROKEN, UNAVAILABLE)
UNAVAILABLE_RETRY_AFTER = "7"

_HEX_TOKEN = re.compile(r"[0-9a-fA-F]{64}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PUSH_TYPES = frozenset({"alert", "background", "voip", "complication", "fileprovider", "mdm"})
_ANSWERS: dict[str, tuple[int, str, dict[str, str]]] = {
    GONE: (410, "Unregistered", {}),
    BAD_TOKEN: (400, "BadDeviceToken", {}),
    OTHER_APP: (400, "DeviceTokenNotForTopic", {}),
    THROTTLED: (429, "TooManyRequests", {}),
    BROKEN: (500, "InternalServerError", {}),
    UNAVAILABLE: (503, "ServiceUnavailable", {"retry-after": UNAVAILABLE_RETRY_AFTER}),
}


@dataclass(frozen=True, slots=True)
class Pushed:
    """One notification the server took."""

    token: str
    headers: Mapping[str, str]
    payload: dict[str, Any]
    jwt: str
    http_version: str


class ApnsError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class FakeApns:
    public_key: ec.EllipticCurvePublicKey
    accepted: list[Pushed] = field(default_factory=list)
    expired: set[str] = field(default_factory=set)
    """JWTs this server has declared expired."""
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    """(token, status, reason) of every refusal."""
    unanswered: int = 0
    """Streams being held open (the ``UNANSWERED`` token)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def check_jwt(self, authorization: str | None) -> str:
        if not authorization:
            raise ApnsError(403, "MissingProviderToken")
        scheme, _, token = authorization.partition(" ")
        if scheme != "bearer" or not token:
            raise ApnsError(403, "InvalidProviderToken")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise ApnsError(403, "InvalidProviderToken") from None
        if header.get("alg") != "ES256" or header.get("kid") != KEY_ID:
            raise ApnsError(403, "InvalidProviderToken")
        if claims["iss"] != TEAM_ID or not isinstance(claims["iat"], int):
            raise ApnsError(403, "InvalidProviderToken")
        if token in self.expired or time.time() - claims["iat"] > TOKEN_LIFETIME:
            raise ApnsError(403, "ExpiredProviderToken")
        return token

    def check_headers(self, headers: Mapping[str, str]) -> None:
        topic = headers.get("apns-topic")
        if not topic:
            raise ApnsError(400, "MissingTopic")
        if topic != TOPIC:
            raise ApnsError(400, "BadTopic")
        push_type = headers.get("apns-push-type")
        if push_type not in _PUSH_TYPES:
            raise ApnsError(400, "InvalidPushType")
        priority = headers.get("apns-priority", "10")
        if priority not in ("1", "5", "10") or (push_type == "background" and priority != "5"):
            raise ApnsError(400, "BadPriority")
        if not _UUID.fullmatch(headers.get("apns-id", str(uuid.uuid4()))):
            raise ApnsError(400, "BadMessageId")
        if not headers.get("apns-expiration", "0").isdigit():
            raise ApnsError(400, "BadExpirationDate")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            raise ApnsError(400, "BadCollapseId")

    @staticmethod
    def check_payload(body: bytes, push_type: str) -> dict[str, Any]:
        if not body:
            raise ApnsError(400, "PayloadEmpty")
        if len(body) > MAX_PAYLOAD:
            raise ApnsError(413, "PayloadTooLarge")
        try:
            payload: dict[str, Any] = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApnsError(400, "BadPayload") from None
        aps = payload.get("aps") if isinstance(payload, dict) else None
        if not isinstance(aps, dict):
            raise ApnsError(400, "BadPayload")
        if push_type == "background" and (aps.get("content-available") != 1 or "alert" in aps):
            raise ApnsError(400, "BadPayload")
        return payload

    async def push(self, request: Request) -> Response:
        token = request.path_params["token"]
        headers = {k: v for k, v in request.headers.items() if k.startswith("apns-")}
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        body = await request.body()
        try:
            bearer = self.check_jwt(request.headers.get("authorization"))
            self.check_headers(headers)
            if not _HEX_TOKEN.fullmatch(token):
                raise ApnsError(400, "BadDeviceToken")
            payload = self.check_payload(body, headers["apns-push-type"])
            await self._special(token, bearer)
        except ApnsError as exc:
            self.refused.append((token, exc.status, exc.reason))
            return _answer(exc.status, exc.reason, apns_id)
        self.accepted.append(
            Pushed(token, headers, payload, bearer, request.scope.get("http_version", ""))
        )
        return Response(status_code=200, headers={"apns-id": apns_id})

    async def _special(self, token: str, bearer: str) -> None:
        if token in _ANSWERS:
            status, reason, _ = _ANSWERS[token]
            raise ApnsError(status, reason)
        if token == EXPIRES_ONCE and not self.expired:
            self.expired.add(bearer)
            raise ApnsError(403, "ExpiredProviderToken")
        if token == ALWAYS_EXPIRED:
            raise ApnsError(403, "ExpiredProviderToken")
        if token == UNANSWERED:
            self.unanswered += 1
            try:
                await self.release.wait()
            finally:
                self.unanswered -= 1
            raise ApnsError(503, "Shutdown")

    async def elsewhere(self, request: Request) -> Response:
        status, reason = (405, "MethodNotAllowed") if request.method != "POST" else (404, "BadPath")
        return _answer(status, reason, str(uuid.uuid4()))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/3/device/{token}", self.push, methods=["POST"]),
                Route("/{rest:path}", self.elsewhere, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )


def _answer(status: int, reason: str, apns_id: str) -> JSONResponse:
    body: dict[str, Any] = {"reason": reason}
    if status == 410:
        body["timestamp"] = int(time.time() * 1000)
    extra = next((h for s, r, h in _ANSWERS.values() if (s, r) == (status, reason)), {})
    return JSONResponse(body, status_code=status, headers={"apns-id": apns_id, **extra})


@dataclass(frozen=True, slots=True)
class ApnsKey:
    path: str
    private_key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class ApnsServer:
    fake: FakeApns
    relay: TcpRelay
    key: ApnsKey
    ca_file: str
    """The CA of the server's certificate, PEM."""

    @property
    def url(self) -> str:
        """The endpoint, through the relay (``localhost``: the certificate's name)."""
        return f"https://localhost:{self.relay.port}"

    def env(self, **overrides: str) -> dict[str, str]:
        """The ``NOTIFY_APNS_*`` variables for this server."""
        return {
            "NOTIFY_APNS_KEY_FILE": self.key.path,
            "NOTIFY_APNS_KEY_ID": KEY_ID,
            "NOTIFY_APNS_TEAM_ID": TEAM_ID,
            "NOTIFY_APNS_TOPIC": TOPIC,
            "NOTIFY_APNS_ENDPOINT": self.url,
            **overrides,
        }


def write_p8(path: Path) -> ec.EllipticCurvePrivateKey:
    """A new P-256 key written to ``path`` as Apple's ``.p8`` (PKCS#8 PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    return key


@pytest.fixture
def apns_key(tmp_path: Path) -> Iterator[ApnsKey]:
    path = tmp_path / f"AuthKey_{KEY_ID}.p8"
    yield ApnsKey(str(path), write_p8(path))


@pytest.fixture
async def apns(apns_key: ApnsKey) -> AsyncIterator[ApnsServer]:
    fake = FakeApns(apns_key.private_key.public_key())
    async with serving_h2(fake.app()) as server, relaying(server.port) as relay:
        with trusting(server.ca_file):
            try:
                yield ApnsServer(fake, relay, apns_key, server.ca_file)
            finally:
                fake.release.set()
