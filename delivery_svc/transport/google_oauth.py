"""OAuth 2.0 access tokens for a Google service account: the JWT bearer grant (RFC 7523)
that Google's APIs, FCM's HTTP v1 among them, take from a server.

The service-account JSON (as the Google Cloud or Firebase console downloads it) gives
``project_id``, ``client_email``, ``private_key`` (RSA, PEM), ``private_key_id`` and
``token_uri``. The assertion is a JWT signed RS256 with that key, with ``iss`` the
account's email, ``scope`` the API's scope, ``aud`` the ``token_uri``, ``iat`` now and
``exp`` at most an hour later; it is POSTed form-encoded with
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` to ``token_uri``, which answers
``{"access_token", "expires_in", "token_type": "Bearer"}``, or ``{"error",
"error_description"}`` (``invalid_grant`` for a bad signature, a deleted key or a clock
off by minutes).

:class:`AccessTokens` keeps one token until a minute before it expires. Concurrent callers
share one refresh (one ``asyncio.Lock``): those who waited on a refresh take its token, or
its failure, rather than each asking again. ``invalidate(token)`` drops a token the API
refused (a 401), once, however many sends saw it refused.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notify_core.constants import FCM_ASSERTION_LIFETIME_SECONDS, FCM_TOKEN_REFRESH_MARGIN_SECONDS

if TYPE_CHECKING:
    import httpx

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REQUIRED_FIELDS = ("project_id", "client_email", "private_key", "token_uri")
_MAX_ERROR_TEXT = 300


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """What a service-account JSON says that the grant uses."""

    project_id: str
    client_email: str
    token_uri: str
    private_key: str = field(repr=False)
    """RSA private key, PEM (PKCS#8 as Google issues it)."""
    private_key_id: str | None = None
    """Sent as the JWT's ``kid``, so Google picks the right public key at once."""


class ServiceAccountError(ValueError):
    """The file is not a usable service-account JSON; the message names the field."""


def parse_service_account(raw: str | bytes) -> ServiceAccount:
    """A service account from the JSON text; raises :class:`ServiceAccountError`."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ServiceAccountError("is not JSON") from None
    if not isinstance(data, dict):
        raise ServiceAccountError("is not a JSON object")
    kind = data.get("type", "service_account")
    if kind != "service_account":
        raise ServiceAccountError(f"type must be service_account, got {kind!r}")
    values: dict[str, str] = {}
    for name in REQUIRED_FIELDS:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ServiceAccountError(f"field {name} is missing or empty")
        values[name] = value.strip()
    if not values["token_uri"].startswith(("https://", "http://")):
        raise ServiceAccountError("field token_uri must be an http(s) URL")
    _rsa_key(values["private_key"])
    key_id = data.get("private_key_id")
    return ServiceAccount(
        project_id=values["project_id"],
        client_email=values["client_email"],
        token_uri=values["token_uri"],
        private_key=values["private_key"],
        private_key_id=key_id if isinstance(key_id, str) and key_id else None,
    )


def load_service_account(path: str) -> ServiceAccount:
    """The service account in the file at ``path``; raises :class:`ServiceAccountError`."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ServiceAccountError(f"cannot be read: {exc.strerror or exc}") from None
    return parse_service_account(raw)


def _rsa_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ServiceAccountError("field private_key is not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ServiceAccountError("field private_key must be an RSA key")
    return key


def assertion(account: ServiceAccount, key: rsa.RSAPrivateKey, scope: str, now: float) -> str:
    """The JWT, signed with ``key``, that asks ``token_uri`` for a token of ``scope``."""
    issued = int(now)
    claims = {
        "iss": account.client_email,
        "scope": scope,
        "aud": account.token_uri,
        "iat": issued,
        "exp": issued + FCM_ASSERTION_LIFETIME_SECONDS,
    }
    headers = {"kid": account.private_key_id} if account.private_key_id else None
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


class TokenRefused(Exception):
    """No access token: ``retryable`` says whether another try may get one."""

    def __init__(self, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


def _refusal_text(response: httpx.Response) -> str:
    """Google's ``{"error", "error_description"}`` as one line."""
    try:
        payload: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    if isinstance(payload, Mapping) and isinstance(payload.get("error"), str):
        parts = [payload["error"], str(payload.get("error_description") or "")]
        text = ": ".join(p for p in parts if p)
    else:
        text = response.text.strip() or response.reason_phrase
    return f"{response.status_code} {text}"[:_MAX_ERROR_TEXT]


def _grant(response: httpx.Response) -> tuple[str, float]:
    """The token and its lifetime in seconds from a 200 answer; raises TokenRefused."""
    try:
        payload: Any = response.json()
        token, lifetime = payload["access_token"], float(payload["expires_in"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        raise TokenRefused(
            "the token endpoint's answer has no access token", retryable=True
        ) from None
    if not isinstance(token, str) or not token or lifetime <= 0:
        raise TokenRefused("the token endpoint's answer has no access token", retryable=True)
    return token, lifetime


class AccessTokens:
    """The account's current access token, fetched when needed and shared by all sends."""

    def __init__(
        self,
        account: ServiceAccount,
        client: httpx.AsyncClient,
        *,
        scope: str,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        margin: float = FCM_TOKEN_REFRESH_MARGIN_SECONDS,
        source: str = "the service-account key",
    ) -> None:
        """``clock`` times the token's life (monotonic); ``wall`` dates the assertion;
        ``source`` says where the key came from, in the message of a refusal."""
        self._source = source
        self._account = account
        self._client = client
        self._scope = scope
        self._clock = clock
        self._wall = wall
        self._margin = margin
        self._lock = asyncio.Lock()
        self._key = _rsa_key(account.private_key)
        self._token: str | None = None
        self._renew_at = 0.0
        self._refreshes = 0
        """Refreshes finished: a caller that saw fewer waited on the last one."""
        self._failure: TokenRefused | None = None

    async def get(self) -> str:
        """A token valid for a while yet; raises :class:`TokenRefused`."""
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        seen = self._refreshes
        async with self._lock:
            if self._token is not None and self._clock() < self._renew_at:
                return self._token
            if self._refreshes != seen and self._failure is not None:
                raise self._failure  # the refresh this call waited on failed
            try:
                token, lifetime = await self._fetch()
            except TokenRefused as exc:
                self._failure = exc
                raise
            finally:
                self._refreshes += 1
            self._failure = None
            self._token = token
            # A short-lived token is kept for half its life rather than not at all.
            self._renew_at = self._clock() + max(lifetime - self._margin, lifetime / 2)
            return token

    def invalidate(self, token: str) -> None:
        """Drop ``token`` (the API refused it); a newer one is kept."""
        if self._token == token:
            self._token = None

    async def _fetch(self) -> tuple[str, float]:
        import httpx

        form = {
            "grant_type": JWT_BEARER_GRANT,
            "assertion": assertion(self._account, self._key, self._scope, self._wall()),
        }
        try:
            response = await self._client.post(self._account.token_uri, data=form)
        except httpx.TimeoutException as exc:
            raise TokenRefused(
                f"the token endpoint timed out: {type(exc).__name__}", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise TokenRefused(
                f"the token endpoint could not be reached: {type(exc).__name__}: {exc}",
                retryable=True,
            ) from None
        if response.status_code == 200:
            return _grant(response)
        text = _refusal_text(response)
        if response.status_code in (400, 401, 403):
            raise TokenRefused(
                f"the token endpoint refused the service account {self._account.client_email} "
                f"({text}); check {self._source} (a deleted or rotated key?) and this "
                "host's clock",
                retryable=False,
            )
        raise TokenRefused(f"the token endpoint answered {text}", retryable=True)
