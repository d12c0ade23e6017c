"""A primary provider and an optional fallback, each behind its circuit breaker.

The same for every channel with providers: email (SMTP, SES, SendGrid), SMS (Twilio, SNS)
and each push platform (one provider, so "failover" is its breaker alone). A send goes to
the first provider whose breaker lets calls through; a retryable refusal (or an exception,
which providers should not raise) counts against that provider's breaker; a send taken, or
refused for the message's own sake, counts for it.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from delivery_svc.breaker import Breaker
from delivery_svc.providers.base import Outcome
from notify_core.config import BREAKER_RESET, BREAKER_THRESHOLD
from notify_core.errors import DeliveryError

M = TypeVar("M", contravariant=True)
N = TypeVar("N")


class Provider(Protocol[M]):
    name: str

    async def send(self, message: M, /) -> Outcome: ...

    async def close(self) -> None: ...


def refused(provider: str, exc: BaseException) -> Outcome:
    """The outcome of a send that raised: a delivery error's, else retryable."""
    if isinstance(exc, DeliveryError):
        return Outcome.refused(exc)
    return Outcome.transient(provider, f"unexpected error: {exc!r}")


class Failover(Generic[N]):
    """The primary provider, or the fallback while the primary's breaker is open."""

    def __init__(
        self,
        primary: Provider[N],
        fallback: Provider[N] | None = None,
        *,
        threshold: int = BREAKER_THRESHOLD.default,
        reset: float = BREAKER_RESET.default,
        channel: str = "email",
    ) -> None:
        self.providers = [p for p in (primary, fallback) if p is not None]
        self.breakers = {p.name: Breaker(p.name, threshold, reset) for p in self.providers}
        self._channel = channel

    async def send(self, message: N) -> Outcome:
        for provider in self.providers:
            breaker = self.breakers[provider.name]
            if not breaker.allow():
                continue
            try:
                outcome = await provider.send(message)
            except Exception as exc:
                breaker.failure()
                return refused(provider.name, exc)
            if outcome.retryable:
                breaker.failure()
            else:
                breaker.success()  # taken, or the provider answered that the message was at fault
            return outcome
        names = ", ".join(p.name for p in self.providers)
        return Outcome.transient(self._channel, f"every provider's circuit is open ({names})")

    async def close(self) -> None:
        for provider in self.providers:
            await provider.close()
