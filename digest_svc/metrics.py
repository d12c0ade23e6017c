"""The digest's metrics (OpenTelemetry), as the original design's monitoring asks: digests
sent, failed and skipped, per run, and how long runs take.

Instruments (meter ``notify.digest``):

- ``notify.digest.sent`` (counter, {digest}): digests sent;
- ``notify.digest.failed`` (counter, {digest}; attribute ``reason``): sends that failed;
- ``notify.digest.skipped`` (counter, {user}; attribute ``reason``): due users without a
  digest, and why (nothing new, rate limited, no address, ...);
- ``notify.digest.items`` (counter, {notification}): notifications carried by digests;
- ``notify.digest.run.duration`` (histogram, s; attribute ``status``): finished runs.

They go wherever the process's OpenTelemetry meter provider sends them (none is set up by
default: then they cost nothing). The same counts are kept per run in ``digest_runs``
(``notify digest status``, ``GetDigestRun``) and logged when a run ends.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import metrics


class DigestMetrics:
    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter("notify.digest")
        self._sent = meter.create_counter(
            "notify.digest.sent", unit="{digest}", description="Digests sent"
        )
        self._failed = meter.create_counter(
            "notify.digest.failed", unit="{digest}", description="Digest sends that failed"
        )
        self._skipped = meter.create_counter(
            "notify.digest.skipped", unit="{user}", description="Due users given no digest"
        )
        self._items = meter.create_counter(
            "notify.digest.items",
            unit="{notification}",
            description="Notifications carried by digests",
        )
        self._duration = meter.create_histogram(
            "notify.digest.run.duration", unit="s", description="Duration of digest runs"
        )

    def batch(
        self,
        sent: int,
        items: int,
        failed: Mapping[str, int],
        skipped: Mapping[str, int],
    ) -> None:
        """What one recorded batch added."""
        if sent:
            self._sent.add(sent)
        if items:
            self._items.add(items)
        for reason, n in failed.items():
            self._failed.add(n, {"reason": reason})
        for reason, n in skipped.items():
            self._skipped.add(n, {"reason": reason})

    def run_finished(self, seconds: float, status: str) -> None:
        self._duration.record(seconds, {"status": status})
