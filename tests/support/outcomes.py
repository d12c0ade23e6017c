"""Assertions on a provider's :class:`Outcome`: refused for good, or for now."""

from __future__ import annotations

import re

from delivery_svc.providers.base import Outcome


def _refused(outcome: Outcome, retryable: bool, match: str | None) -> Outcome:
    assert not outcome.ok, f"expected a refusal, the provider took it: {outcome}"
    assert outcome.retryable is retryable, outcome
    if match is not None:
        assert re.search(match, outcome.message), f"{match!r} not in {outcome.message!r}"
    return outcome


def permanent(outcome: Outcome, *, match: str | None = None) -> Outcome:
    """``outcome`` was refused for good (and its message matches ``match``)."""
    return _refused(outcome, False, match)


def transient(outcome: Outcome, *, match: str | None = None) -> Outcome:
    """``outcome`` was refused for now: worth another try."""
    return _refused(outcome, True, match)


def taken(outcome: Outcome) -> Outcome:
    """``outcome`` is a send the provider took."""
    assert outcome.ok, f"expected the provider to take it: {outcome}"
    return outcome
