"""A local server speaking FCM's HTTP v1 API and Google's OAuth 2.0 token endpoint, and
the ``fcm`` and ``fcm_service_account`` fixtures.

Token endpoint (``POST /token``): the JWT bearer grant, checked as Google checks it: the
``grant_type``, the assertion's RS256 signature against the service account's public key
(and its ``kid``), its ``iss``, ``scope``, ``aud``, and a lifetime of at most an hour;
answers ``{"access_token", "expires_in", "token_type": "Bearer"}`` (``expires_in`` is
:attr:`FakeFcm.expires_in`) or Google's ``{"error", "error_description"}``.

Send (``POST /v1/projects/{project}/messages:send``): the bearer token (401
``UNAUTHENTICATED``), the project (404 ``NOT_FOUND``), then the JSON as FCM parses it
(unknown fields, one target, string data values, the ``android`` enum and duration, the
``webpush`` headers), answering Google's ``{"error": {"code", "message", "status",
"details": [...]}}`` bodies. Tokens starting with a prefix of :data:`TRIGGERS` get FCM's
answer for that error; ``slow-`` ones wait for :attr:`FakeFcm.released` (set when the
server stops). Every accepted message is recorded with the HTTP version and the client
address (one per connection) it came over. :attr:`FakeFcm.unavailable` makes FCM answer
every send 503 ``UNAVAILABLE``, as during an outage; :attr:`FakeFcm.answer_delay` holds
each accepted send a while before its answer, so a send can be caught in flight.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.h2server import serving_h2, trusting

PROJECT_ID = "notify-test"
CLIENT_EMAIL = "notify-push@notify-test.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
QUOTA_RETRY_AFTER = 30
UNAVAILABLE_RETRY_AFTER = 120
"""Seconds; the 503 gives it as an HTTP date."""


def google_error(
    code: int, status: str, message: str, *details: dict[str, Any], **headers: str
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return JSONResponse({"error": error}, status_code=code, headers=headers)


def fcm_error(code: str) -> dict[str, Any]:
    return {"@type": FCM_ERROR, "errorCode": code}


def bad_request(field_name: str | None, description: str) -> dict[str, Any]:
    violation = {"description": description}
    if field_name is not None:
        violation = {"field": field_name, **violation}
    return {"@type": BAD_REQUEST, "fieldViolations": [violation]}


def invalid(field_name: str | None, message: str) -> JSONResponse:
    """FCM's 400 for a request it cannot parse."""
    return google_error(400, "INVALID_ARGUMENT", message, bad_request(field_name, message))


def _unregistered() -> JSONResponse:
    return google_error(
        404, "NOT_FOUND", "Requested entity was not found.", fcm_error("UNREGISTERED")
    )


def _invalid_token() -> JSONResponse:
    return google_error(
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        fcm_error("INVALID_ARGUMENT"),
    )


def _malformed_token() -> JSONResponse:
    return google_error(
        400,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
        fcm_error("INVALID_ARGUMENT"),
        bad_request("message.token", "Invalid registration token"),
    )


def _quota() -> JSONResponse:
    message = (
        "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per "
        f"minute' of service 'fcm.googleapis.com' for consumer 'project_number:{PROJECT_ID}'."
    )
    return google_error(
        429,
        "RESOURCE_EXHAUSTED",
        message,
        fcm_error("QUOTA_EXCEEDED"),
        **{"Retry-After": str(QUOTA_RETRY_AFTER)},
    )


def _unavailable() -> JSONResponse:
    when = formatdate(time.time() + UNAVAILABLE_RETRY_AFTER, usegmt=True)
    return google_error(
        503,
        "UNAVAILABLE",
        "The service is currently unavailable.",
        fcm_error("UNAVAILABLE"),
        **{"Retry-After": when},
    )


def _internal() -> JSONResponse:
    return google_error(500, "INTERNAL", "Internal error encountered.", fcm_error("INTERNAL"))


def _third_party_auth() -> JSONResponse:
    return google_error(
        401,
        "UNAUTHENTICATED",
        "Auth error from APNS or Web Push Service",
        fcm_error("THIRD_PARTY_AUTH_ERROR"),
    )


def _sender_id_mismatch() -> JSONResponse:
    return google_error(
        403, "PERMISSION_DENIED", "SenderId mismatch", fcm_error("SENDER_ID_MISMATCH")
    )


TRIGGERS: dict[str, Callable[[], JSONResponse]] = {
    "unregistered-": _unregistered,
    "invalid-": _invalid_token,
    "malformed-": _malformed_token,
    "quota-": _quota,
    "unavailable-": _unavailable,
    "internal-": _internal,
    "thirdpartyauth-": _third_party_auth,
    "senderid-": _sender_id_mismatch,
}
"""Token prefixes and the answer FCM gives for them."""


def _unauthenticated(reason: str) -> JSONResponse:
    return google_error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        {"@type": ERROR_INFO, "reason": reason, "domain": "googleapis.com"},
    )


_MESSAGE_FIELDS = {"name", "data", "notification", "android", "webpush", "apns", "fcm_options"}
_TARGETS = ("token", "topic", "condition")
_FIELDS = {
    "message.notification": {"title", "body", "image"},
    "message.android": {"collapse_key", "priority", "ttl", "restricted_package_name", "data"},
    "message.webpush": {"headers", "data", "notification", "fcm_options"},
}
_DURATION = re.compile(r"\d+(\.\d{1,9})?s")


def _unknown(where: str, name: str) -> JSONResponse:
    part = where.rsplit(".", 1)[-1]
    return invalid(
        where,
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{part}': Cannot find field.",
    )


def _string_map(where: str, value: Any) -> JSONResponse | None:
    if not isinstance(value, dict):
        return invalid(where, f"Invalid value at '{where}' (map), {json.dumps(value)}")
    for i, item in enumerate(value.values()):
        if not isinstance(item, str):
            at = f"{where}[{i}].value"
            return invalid(at, f"Invalid value at '{at}' (TYPE_STRING), {json.dumps(item)}")
    return None


def shape_error(body: Any) -> JSONResponse | None:
    """FCM's answer to a request body it refuses, or None."""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return invalid(None, "Invalid JSON payload received. 'message' must be an object.")
    for name in message:
        if name not in _MESSAGE_FIELDS | set(_TARGETS):
            return _unknown("message", name)
    targets = [t for t in _TARGETS if message.get(t)]
    if len(targets) != 1:
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "Recipient of the message is not set.",
            fcm_error("INVALID_ARGUMENT"),
        )
    for where, allowed in _FIELDS.items():
        part = message.get(where.split(".")[1], {})
        for name in part if isinstance(part, dict) else ():
            if name not in allowed:
                return _unknown(where, name)
    for where, value in (
        ("message.data", message.get("data", {})),
        ("message.notification", message.get("notification", {})),
        ("message.webpush.headers", message.get("webpush", {}).get("headers", {})),
    ):
        problem = _string_map(where, value)
        if problem is not None:
            return problem
    return _android_error(message.get("android", {}))


def _android_error(android: dict[str, Any]) -> JSONResponse | None:
    priority = android.get("priority", "normal")
    if str(priority).upper() not in ("NORMAL", "HIGH"):
        return invalid(
            "message.android.priority",
            "Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase"
            f'.fcm.v1.AndroidConfig.AndroidMessagePriority), "{priority}"',
        )
    ttl = android.get("ttl", "0s")
    if not isinstance(ttl, str) or not _DURATION.fullmatch(ttl):
        return invalid(
            "message.android.ttl",
            "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf"
            f'.Duration), "{ttl}"',
        )
    return None


@dataclass(frozen=True, slots=True)
class Accepted:
    name: str
    message: dict[str, Any]
    http_version: str
    client: tuple[str, int] | None
    """The client's address and port: one per connection."""


@dataclass
class FakeFcm:
    public_key: rsa.RSAPublicKey
    key_id: str
    project_id: str = PROJECT_ID
    client_email: str = CLIENT_EMAIL
    token_uri: str = ""
    """Set once the server listens; the ``aud`` an assertion must carry."""
    expires_in: int = 3600
    token_answer: tuple[int, dict[str, Any]] | None = None
    """When set, the token endpoint answers this (status, JSON) instead."""
    refuse_tokens: bool = False
    """Every send is refused 401 (as for a token Google no longer takes)."""
    token_requests: int = 0
    """Posts to the token endpoint, granted or not."""
    assertions: list[dict[str, Any]] = field(default_factory=list)
    """The claims of every assertion that verified."""
    sends: int = 0
    """Send requests, accepted or not."""
    accepted: list[Accepted] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    """``slow-`` tokens are answered once it is set."""
    unavailable: bool = False
    """Every send is answered 503 ``UNAVAILABLE`` (with its ``Retry-After``), whatever
    its token: FCM is down."""
    answer_delay: float = 0.0
    """Seconds an accepted send waits, recorded already, before it is answered."""
    answering: int = 0
    """Accepted sends waiting out :attr:`answer_delay`: taken, and not answered yet."""
    _tokens: dict[str, float] = field(default_factory=dict)

    def revoke(self) -> None:
        """Forget every access token issued so far."""
        self._tokens.clear()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", self.send, methods=["POST"]),
            ]
        )

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if self.token_answer is not None:
            return JSONResponse(self.token_answer[1], status_code=self.token_answer[0])
        if form.get("grant_type") != JWT_BEARER:
            return _grant_error(
                "unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', '')}"
            )
        problem = self._check_assertion(form.get("assertion", ""))
        if problem is not None:
            return problem
        token = f"ya29.{secrets.token_urlsafe(32)}"
        self._tokens[token] = time.monotonic() + self.expires_in
        body = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        return JSONResponse(body)

    def _check_assertion(self, assertion: str) -> JSONResponse | None:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=self.client_email,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.InvalidSignatureError:
            return _grant_error("invalid_grant", "Invalid JWT Signature.")
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            return _grant_error("invalid_grant", _SHORT_LIVED)
        except jwt.InvalidAudienceError:
            return _grant_error(
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The right audience is {self.token_uri}",
            )
        except jwt.InvalidIssuerError:
            return _grant_error("invalid_grant", "Invalid grant: account not found")
        except jwt.InvalidTokenError as exc:
            return _grant_error("invalid_grant", f"Invalid JWT: {exc}")
        if header.get("kid") not in (None, self.key_id):
            return _grant_error("invalid_grant", "Invalid JWT Signature.")
        if claims["exp"] - claims["iat"] > 3600:
            return _grant_error("invalid_grant", _SHORT_LIVED)
        if SCOPE not in str(claims["scope"]).split():
            return _grant_error(
                "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        self.assertions.append({"header": header, **claims})
        return None

    async def send(self, request: Request) -> Response:
        self.sends += 1
        # Read it all first: hypercorn fails the whole connection on DATA frames that
        # arrive for a stream it has already answered.
        raw = await request.body()
        if self.unavailable:
            return _unavailable()
        bearer = request.headers.get("authorization", "")
        token = bearer.removeprefix("Bearer ")
        if not bearer.startswith("Bearer ") or self.refuse_tokens:
            return _unauthenticated("ACCESS_TOKEN_EXPIRED")
        if self._tokens.get(token, 0.0) < time.monotonic():
            return _unauthenticated("ACCESS_TOKEN_EXPIRED")
        project = request.path_params["project"]
        if project != self.project_id:
            return google_error(404, "NOT_FOUND", "Requested entity was not found.")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return invalid(None, "Invalid JSON payload received. Unexpected token.")
        problem = shape_error(body)
        if problem is not None:
            return problem
        target = str(body["message"].get("token", ""))
        for prefix, answer in TRIGGERS.items():
            if target.startswith(prefix):
                return answer()
        if target.startswith("slow-"):
            await self.released.wait()
        name = f"projects/{project}/messages/{secrets.randbelow(10**19)}"
        client = request.scope.get("client")
        version = str(request.scope.get("http_version", ""))
        self.accepted.append(
            Accepted(name, body["message"], version, tuple(client) if client else None)
        )
        if self.answer_delay:
            self.answering += 1
            try:
                await asyncio.sleep(self.answer_delay)
            finally:
                self.answering -= 1
        return JSONResponse({"name": name})


_SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


def _grant_error(error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


# --- Service accounts and fixtures --------------------------------------------------------


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_service_account(
    directory: Path,
    key: rsa.RSAPrivateKey,
    *,
    token_uri: str = "https://oauth2.googleapis.com/token",
    key_id: str = "0123456789abcdef",
    **changes: Any,
) -> Path:
    """A service-account JSON as the Firebase console downloads it; ``changes`` replace
    (or, given None, remove) fields."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    data: dict[str, Any] = {
        "type": "service_account",
        "project_id": PROJECT_ID,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "104875938475928374659",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    path = directory / f"service-account-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


@dataclass(frozen=True, slots=True)
class FcmServer:
    fake: FakeFcm
    url: str
    """The base URL: NOTIFY_FCM_ENDPOINT, and the token endpoint's host."""
    key: rsa.RSAPrivateKey
    credentials: Path
    """A service-account JSON whose ``token_uri`` is the fake's."""
    ca_file: str

    def service_account(self, directory: Path, **changes: Any) -> Path:
        """Another key file for this server (``changes`` as in write_service_account)."""
        return write_service_account(directory, self.key, token_uri=self.fake.token_uri, **changes)


@pytest.fixture
def fcm_service_account(tmp_path: Path) -> Path:
    """A valid service-account JSON (a fresh RSA key) in a temporary directory."""
    return write_service_account(tmp_path, new_key())


@pytest.fixture
async def fcm(tmp_path: Path) -> AsyncIterator[FcmServer]:
    """The fake FCM over TLS and HTTP/2, trusted through ``SSL_CERT_FILE`` during the test
    (build providers inside it), with a service account whose key it knows."""
    key = new_key()
    fake = FakeFcm(public_key=key.public_key(), key_id="0123456789abcdef")
    async with serving_h2(fake.app()) as server:
        fake.token_uri = f"{server.url}/token"
        credentials = write_service_account(tmp_path, key, token_uri=fake.token_uri)
        try:
            with trusting(server.ca_file):
                yield FcmServer(fake, server.url, key, credentials, server.ca_file)
        finally:
            fake.released.set()
