"""One digest run: due users a page at a time, decided, rate-checked, rendered, handed to
delivery, recorded. A thin shell around :mod:`digest_svc.schedule` and
:mod:`digest_svc.content`; the sending is the delivery worker's (:mod:`delivery_svc.digests`).

Per page (``NOTIFY_DIGEST_PAGE`` users, by user id): the users due at the run's clock
(``as_of``) with their preferences, their put-aside items, their suppressed addresses and
which of them already have this period's digest. Then per batch (``NOTIFY_DIGEST_BATCH``):

1. decide each user (:func:`digest_svc.content.decide`);
2. count one email against each sender's rate limit (the email limits the router uses;
   type ``digest`` may have its own rule): refused ones are skipped "rate limited" and due
   again when their window frees a slot;
3. render (the ``digest`` template of the locale, else the built-in one);
4. record, in one transaction fenced by the scheduler lease: the ``digests`` rows (unique
   per user and period, ``pending`` with the rendered message), the items they carry
   marked with the digest's id, each user's next due time, the run's counts, and one job
   per digest staged on the digest delivery queue (``deliver.digest.low``, through the
   outbox). After the commit the jobs are flushed. The next batch is rendered while this
   one records.

The delivery worker then claims each digest, sends it through the email channel's
providers and breakers, and records it ``sent`` (its items, written once here, then read
``digest_sent``: :func:`notify_core.domain.shown_status`),
``retrying`` on the delivery retry schedule (``NOTIFY_RETRY_SCHEDULE``), or ``failed``, a
dead letter (its items stay put aside for the next digest).

**Exactly once per period**: a user's digest row, the marks on its items, the move of
their schedule and the digest's job commit together, and a user gets a digest only when no
row exists for the period. A crash before that commit leaves nothing (the batch is
decided again); after it, the job is delivered by the queue. The send is the delivery
worker's: a crash between a provider taking the digest and the worker recording it resends
it, once its lease lapses, with the same Message-ID (``<digest-id.digest@domain>``, the
id fixed by user and period), which receivers can drop: the same window as any email's.

**Counts**: ``sent`` counts the digests the run handed to delivery (written and queued),
``items`` what they carry; a digest's own outcome is its ``digests`` row's status.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any

from delivery_svc.api import EmailMessage, message_json, suppressed_addresses, unsubscribe_link
from digest_svc import store
from digest_svc.config_digest import DigestSettings
from digest_svc.content import RATE_LIMITED, Outcome, Recipient, Send, Skip, decide
from digest_svc.message import (
    BUILT_IN,
    digest_email,
    template_data,
    template_notification,
)
from digest_svc.metrics import DigestMetrics
from digest_svc.runs import Counts, Run
from digest_svc.schedule import Slot, digest_id, due_slot, next_digest_at, period_key
from digest_svc.store import Batch, DueUser
from notify_core.cache.base import CacheBackends
from notify_core.constants import DIGEST_TEMPLATE, DIGEST_TYPE
from notify_core.db.engine import Database
from notify_core.db.lease import Lease
from notify_core.db.schema import utcnow
from notify_core.domain import DeliveryStatus
from notify_core.errors import InvalidArgument, LeaseLost
from notify_core.queue.base import WorkQueue
from notify_core.ratelimit import RateRules
from router_svc.api import Preferences, Question, ask_rate_limits
from template_svc.api import Rendered, Renderer, RenderJob, Resolved, Templates

log = logging.getLogger(__name__)


@dataclass
class _Due:
    """One due user of a batch, and what became of them."""

    user: DueUser
    slot: Slot
    period: str
    outcome: Outcome
    message: EmailMessage | None = None
    retry_in: float | None = None


@dataclass
class _Delta:
    """What one batch adds (for the metrics, once it is recorded); ``sent``: handed to
    delivery."""

    sent: int = 0
    items: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


# Users sharing a zone and an hour share their slots: a page asks a few dozen questions.
_due_slot = lru_cache(maxsize=4096)(due_slot)
_next_digest_at = lru_cache(maxsize=4096)(next_digest_at)


_Part = tuple[str, str | None, dict[str, Any], dict[str, Any], str | None]
"""A digest to render: its id, unsubscribe link, template data, notification, locale."""


def _no_layout(name: str) -> None:
    return None


def _allows_email(preferences: Preferences, type_: str) -> bool:
    return preferences.allows("email", type_)


class DigestRunner:
    def __init__(
        self,
        database: Database,
        backends: CacheBackends,
        namespace: str,
        queue: WorkQueue,
        *,
        email_from: str,
        settings: DigestSettings,
        rates: RateRules | None = None,
        templates: Templates | None = None,
        renderer: Renderer | None = None,
        signing_secret: str | None = None,
        public_url: str | None = None,
        metrics: DigestMetrics | None = None,
    ) -> None:
        self._db = database
        self._backends = backends
        self._ns = namespace
        self._queue = queue
        self._from = email_from
        self._settings = settings
        self._rates = rates or RateRules()
        self._templates = templates
        self._renderer = templates.renderer if templates is not None else renderer or Renderer()
        self._secret = signing_secret
        self._public_url = public_url
        self.metrics = metrics or DigestMetrics()

    async def run(self, run: Run, lease: Lease) -> Counts:
        """Carry ``run`` out from where its recorded counts stand; answer its counts.
        Raises :class:`~notify_core.errors.LeaseLost` if the lease goes to another node,
        and whatever the backends raise; what was recorded stays recorded."""
        counts = copy.deepcopy(run.counts)
        started = time.perf_counter()
        remaining = await store.due_count(self._db, run.as_of)
        counts.due = counts.processed + remaining
        counts.timings["query"] += time.perf_counter() - started
        templates: dict[str | None, Resolved | None] = {}
        recording: asyncio.Task[None] | None = None
        # The next page is read while this one is sent and recorded.
        loading = asyncio.create_task(self._page(run.as_of, "", counts))
        try:
            while True:
                users = await loading
                if not users:
                    break
                loading = asyncio.create_task(self._page(run.as_of, users[-1].user.user_id, counts))
                for chunk in store.batched(users, self._settings.batch):
                    if not lease.held(margin=lease.ttl.total_seconds() / 2) and not (
                        await lease.acquire()
                    ):
                        raise LeaseLost(f"the lease {lease.name!r} went to another node")
                    batch, delta = await self._batch(chunk, run, counts, templates)
                    snapshot = copy.deepcopy(counts)
                    if recording is not None:
                        await recording
                    recording = asyncio.create_task(
                        self._record(lease, run.id, batch, snapshot, counts, delta)
                    )
            if recording is not None:
                await recording
                recording = None
        finally:
            for task in (recording, loading):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
        return counts

    async def _page(self, as_of: datetime, after: str, counts: Counts) -> list[_Due]:
        """The next page of users due (ids after ``after``), each with their outcome
        decided (pure), in user id order; empty at the end."""
        clock = time.perf_counter()
        page = await store.due_page(self._db, as_of, after, self._settings.page)
        users = await self._load(page, as_of) if page else []
        counts.timings["query"] += time.perf_counter() - clock
        return users

    async def _load(self, page: list[DueUser], as_of: datetime) -> list[_Due]:
        ids = [u.user_id for u in page]
        items = await store.load_items(self._db, ids, as_of)
        suppressed = await suppressed_addresses(
            self._db, [u.preferences.email for u in page if u.preferences.email]
        )
        slots = {u.user_id: _due_slot(as_of, u.schedule, u.zone) for u in page}
        periods = {u.user_id: period_key(slots[u.user_id].day, u.schedule) for u in page}
        sent = await store.sent_periods(self._db, list(periods.items()))
        out = []
        for u in page:
            prefs = u.preferences
            recipient = Recipient(
                email=prefs.email,
                allows=partial(_allows_email, Preferences(prefs.switches, prefs.per_type)),
                email_on=prefs.switches.get("email", True),
                unsubscribed=prefs.per_type.get(DIGEST_TYPE, {}).get("email") is False,
                suppressed=suppressed.get((prefs.email or "").lower()),
            )
            period = periods[u.user_id]
            outcome = decide(recipient, items[u.user_id], already_sent=(u.user_id, period) in sent)
            out.append(_Due(u, slots[u.user_id], period, outcome))
        return out

    async def _batch(
        self,
        chunk: list[_Due],
        run: Run,
        counts: Counts,
        templates: dict[str | None, Resolved | None],
    ) -> tuple[Batch, _Delta]:
        """Rate-check and render one batch; answer what to record, and count it."""
        senders = [d for d in chunk if isinstance(d.outcome, Send)]
        if senders:
            verdicts = await ask_rate_limits(
                self._backends,
                self._ns,
                self._rates,
                [Question(d.user.user_id, d.user.user_id, DIGEST_TYPE, "email") for d in senders],
            )
            for d, verdict in zip(senders, verdicts, strict=True):
                if not verdict.allowed:
                    d.outcome = Skip(RATE_LIMITED, settled=False)
                    d.retry_in = verdict.retry_after
            senders = [d for d in senders if isinstance(d.outcome, Send)]
        clock = time.perf_counter()
        await self._compose(senders, templates)
        counts.timings["render"] += time.perf_counter() - clock
        return self._outcomes(chunk, run, counts)

    async def _compose(
        self, senders: list[_Due], templates: dict[str | None, Resolved | None]
    ) -> None:
        """Each sender's message, the batch rendered in one hop to the renderer's threads:
        with the ``digest`` template of the digest's locale if one is published (looked up
        once per run and locale), else, or where that fails to render, the built-in one."""
        parts: list[_Part] = []
        for d in senders:
            assert isinstance(d.outcome, Send)
            digest, user = d.outcome.digest, d.user.user_id
            ident = digest_id(user, d.period)
            link = unsubscribe_link(self._secret, self._public_url, user, DIGEST_TYPE)
            data = template_data(digest, d.user.schedule.frequency, d.period, link)
            notification = template_notification(ident, user, digest, d.user.schedule.frequency)
            if self._templates is not None and digest.locale not in templates:
                templates[digest.locale] = await self._templates.resolve(
                    DIGEST_TEMPLATE, "email", digest.locale
                )
            parts.append((ident, link, data, notification, digest.locale))
        jobs: list[RenderJob] = [
            (r.template.source(), data, n, r.layouts) if r else (BUILT_IN, data, n, _no_layout)
            for _, _, data, n, r in ((*p[:4], templates.get(p[4])) for p in parts)
        ]
        rendered = await self._renderer.render_many_async(jobs)
        rendered = await self._fall_back(parts, rendered, templates)
        for d, (ident, link, _, notification, _), r in zip(senders, parts, rendered, strict=True):
            if isinstance(r, InvalidArgument):
                raise r
            assert d.user.preferences.email
            d.message = digest_email(
                to=d.user.preferences.email,
                sender=self._from,
                rendered=r,
                digest_id=ident,
                fallback_subject=str(notification["title"]),
                unsubscribe_url=link,
            )

    async def _fall_back(
        self,
        parts: list[_Part],
        rendered: list[Rendered | InvalidArgument],
        templates: dict[str | None, Resolved | None],
    ) -> list[Rendered | InvalidArgument]:
        """``rendered``, with those a published template failed to render rendered again
        with the built-in one (and that template no longer used in this run)."""
        failed = [k for k, r in enumerate(rendered) if isinstance(r, InvalidArgument)]
        for k in failed:
            locale = parts[k][4]
            resolved = templates.get(locale)
            if resolved is not None:  # the first failure of this locale's template
                log.warning(
                    "digest template %r (locale %r) failed (%s); the built-in one is used",
                    DIGEST_TEMPLATE,
                    resolved.template.locale,
                    rendered[k],
                )
                templates[locale] = None
        if failed:
            again = await self._renderer.render_many_async(
                [(BUILT_IN, parts[k][2], parts[k][3], _no_layout) for k in failed]
            )
            for k, r in zip(failed, again, strict=True):
                rendered[k] = r
        return rendered

    def _outcomes(self, chunk: list[_Due], run: Run, counts: Counts) -> tuple[Batch, _Delta]:
        """What the batch came to: rows to write, next due times, counts."""
        batch, delta = Batch(), _Delta()
        for d in chunk:
            user = d.user.user_id
            settle = _next_digest_at(d.slot.at, d.user.schedule, d.user.zone)
            outcome = d.outcome
            if isinstance(outcome, Skip):
                counts.skip(outcome.reason)
                delta.skipped[outcome.reason] = delta.skipped.get(outcome.reason, 0) + 1
                batch.dropped.extend(i.delivery_id for i in outcome.dropped)
                wait = timedelta(seconds=d.retry_in or 0)
                batch.next_at[user] = settle if outcome.settled else run.as_of + wait
                continue
            assert d.message is not None
            ident = digest_id(user, d.period)
            batch.digests.append(
                {
                    "id": ident,
                    "user_id": user,
                    "period_key": d.period,
                    "status": DeliveryStatus.PENDING,
                    "run_id": run.id,
                    "items": len(outcome.digest.items),
                    "message_id": d.message.message_id,
                    "message": message_json(d.message),
                    "slot_at": d.slot.at,
                    "created_at": utcnow(),
                }
            )
            batch.carried[ident] = [i.delivery_id for i in outcome.digest.items]
            batch.dropped.extend(i.delivery_id for i in outcome.dropped)
            batch.next_at[user] = settle
            counts.sent += 1
            counts.items += len(outcome.digest.items)
            delta.sent += 1
            delta.items += len(outcome.digest.items)
        counts.processed += len(chunk)
        return batch, delta

    async def _record(
        self,
        lease: Lease,
        run_id: str,
        batch: Batch,
        snapshot: Counts,
        counts: Counts,
        delta: _Delta,
    ) -> None:
        clock = time.perf_counter()
        done = await store.record(self._db, self._queue, lease, run_id, batch, snapshot)
        flushing = time.perf_counter()
        self._queue.flush(done.staged)
        handover = done.staging + time.perf_counter() - flushing
        counts.timings["send"] += handover
        counts.timings["record"] += time.perf_counter() - clock - handover
        lost = [r for r in batch.digests if r["id"] not in done.written]
        if lost:
            log.warning(
                "%d digests were recorded by another run first (a race the lease should "
                "prevent): their items are left to it",
                len(lost),
            )
        self.metrics.batch(delta.sent, delta.items, delta.failed, delta.skipped)
