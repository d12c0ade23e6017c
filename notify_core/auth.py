"""Who is calling: producers with API keys, end users with HS256 JWTs.

Both checks are pure (no I/O) and constant-time where it matters. A user token presented
as a producer key is refused, and the other way round.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Authenticator:
    api_keys: frozenset[str]
    jwt_secret: str | None

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
        return check_user_id(sub, "token.sub")

    def session(self, token: str) -> tuple[str, float]:
        """The user id of a valid, unexpired token (:meth:`user`) and when it expires
        (its ``exp``, seconds since the epoch): a live connection lasts no longer."""
        user_id = self.user(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        return user_id, float(claims["exp"])


def issue_user_token(secret: str, user_id: str, ttl: float = 3600.0) -> str:
    """Mint a user token (for tests, the CLI and the README tour)."""
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + int(ttl)}, secret, "HS256")
