"""API keys and user tokens (pure)."""

from __future__ import annotations

import time

import jwt
import pytest

from notify_core.auth import Authenticator, VerifiedTokens, bearer, issue_user_token
from notify_core.errors import InvalidArgument, Unauthenticated

SECRET = "s" * 32
AUTH = Authenticator(frozenset({"key-aaaaaaaa"}), SECRET)


def test_bearer_parses_and_refuses() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    for bad in (None, "", "abc", "Basic abc", "Bearer"):
        with pytest.raises(Unauthenticated):
            bearer(bad)


def test_producer_key() -> None:
    AUTH.producer("key-aaaaaaaa")
    with pytest.raises(Unauthenticated):
        AUTH.producer("key-aaaaaaab")
    with pytest.raises(Unauthenticated, match="NOTIFY_API_KEYS"):
        Authenticator(frozenset(), SECRET).producer("key-aaaaaaaa")


def test_user_token() -> None:
    assert AUTH.user(issue_user_token(SECRET, "alice")) == "alice"


@pytest.mark.parametrize(
    ("claims", "secret", "alg", "words"),
    [
        ({"sub": "a", "exp": time.time() - 1}, SECRET, "HS256", "expired"),
        ({"sub": "a", "exp": time.time() + 60}, "t" * 32, "HS256", "signature"),
        ({"sub": "a"}, SECRET, "HS256", "exp"),
        ({"exp": time.time() + 60}, SECRET, "HS256", "sub"),
        ({"sub": "a", "exp": time.time() + 60}, SECRET, "HS512", "invalid"),
    ],
)
def test_bad_tokens_are_refused(
    claims: dict[str, object], secret: str, alg: str, words: str
) -> None:
    token = jwt.encode(claims, secret, alg)
    with pytest.raises(Unauthenticated, match=words):
        AUTH.user(token)


def test_producer_key_is_not_a_token() -> None:
    with pytest.raises(Unauthenticated):
        AUTH.user("key-aaaaaaaa")


@pytest.mark.parametrize("sub", ["u" * 256, "a\x00b"])
def test_a_signed_subject_that_is_no_user_id_names_the_field(sub: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        AUTH.user(issue_user_token(SECRET, sub))
    assert info.value.field == "token.sub"
    assert AUTH.user(issue_user_token(SECRET, "u" * 255)) == "u" * 255


def test_verified_tokens_expire_and_stay_bounded() -> None:
    now = [1000.0]
    tokens = VerifiedTokens(size=2, clock=lambda: now[0])
    tokens.put("a", "alice", 1010.0)
    tokens.put("b", "bob", 1020.0)
    assert tokens.get("a") == ("alice", 1010.0)  # a is now the most recently used
    tokens.put("c", "carol", 1030.0)
    assert tokens.get("b") is None and len(tokens) == 2
    now[0] = 1010.0  # PyJWT refuses a token from its exp on
    assert tokens.get("a") is None
    assert tokens.get("c") == ("carol", 1030.0)


def test_a_remembered_token_is_refused_once_expired() -> None:
    auth = Authenticator(frozenset(), SECRET)
    exp = int(time.time()) + 1
    token = jwt.encode({"sub": "alice", "exp": exp}, SECRET, "HS256")
    assert auth.session(token) == ("alice", float(exp))
    assert auth.verified.get(token) == ("alice", float(exp))
    assert auth.user(token) == "alice"
    while time.time() < exp:  # wait for the expiry (at most a second)
        time.sleep(0.05)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.user(token)
    assert auth.verified.get(token) is None


def test_a_refused_token_is_not_remembered() -> None:
    auth = Authenticator(frozenset(), SECRET)
    bad = jwt.encode({"sub": "alice", "exp": time.time() + 60}, "t" * 32, "HS256")
    with pytest.raises(Unauthenticated):
        auth.user(bad)
    assert len(auth.verified) == 0
