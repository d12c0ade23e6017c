"""Who is calling: producers with API keys, end users with HS256 JWTs.

Both checks are pure (no I/O) and constant-time where it matters. A user token presented
as a producer key is refused, and the other way round. A user token that verified is
remembered (:class:`VerifiedTokens`, bounded, keyed by the whole token) until its ``exp``,
so a client that reads its inbox often pays for the signature check once.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt

from notify_core.checks import check_user_id
from notify_core.errors import Unauthenticated


def bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    if not header:
        raise Unauthenticated("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("malformed Authorization header (expected 'Bearer <token>')")
    return token.strip()


VERIFIED_TOKENS = 4096
"""How many verified user tokens an :class:`Authenticator` remembers."""


class VerifiedTokens:
    """User tokens that verified, with their user id and ``exp``: at most ``size``, the
    least recently used forgotten first; a token is never answered at or after its ``exp``
    (the moment PyJWT starts refusing it)."""

    def __init__(self, size: int = VERIFIED_TOKENS, clock: Callable[[], float] = time.time):
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, token: str) -> tuple[str, float] | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return entry

    def put(self, token: str, user_id: str, exp: float) -> None:
        self._entries[token] = (user_id, exp)
        self._entries.move_to_end(token)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class Authenticator:
    api_keys: frozenset[str]
    jwt_secret: str | None
    verified: VerifiedTokens = field(default_factory=VerifiedTokens, compare=False, repr=False)

    def producer(self, token: str) -> None:
        """Accept ``token`` only if it is one of the configured API keys."""
        if not self.api_keys:
            raise Unauthenticated("no API keys are configured (set NOTIFY_API_KEYS)")
        encoded = token.encode()
        if not any(hmac.compare_digest(encoded, key.encode()) for key in self.api_keys):
            raise Unauthenticated("invalid API key")

    def user(self, token: str) -> str:
        """The user id (``sub``) of a valid, unexpired HS256 token; a signed ``sub`` that is
        no user id (too long, NUL) is ``InvalidArgument`` naming ``token.sub``."""
        return self.session(token)[0]

    def session(self, token: str) -> tuple[str, float]:
        """The user id of a valid, unexpired token (:meth:`user`) and when it expires
        (its ``exp``, seconds since the epoch): a live connection lasts no longer."""
        known = self.verified.get(token)
        if known is not None:
            return known
        user_id, exp = self._verify(token)
        self.verified.put(token, user_id, exp)
        return user_id, exp

    def _verify(self, token: str) -> tuple[str, float]:
        if self.jwt_secret is None:
            raise Unauthenticated("user tokens are not accepted (set NOTIFY_JWT_SECRET)")
        try:
            claims = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("token signature is invalid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token is missing the '{exc.claim}' claim") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated("token 'sub' must be a non-empty string")
        return check_user_id(sub, "token.sub"), float(claims["exp"])


def issue_user_token(secret: str, user_id: str, ttl: float = 3600.0) -> str:
    """Mint a user token (for tests, the CLI and the README tour)."""
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + int(ttl)}, secret, "HS256")
