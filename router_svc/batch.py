"""A batch's routing, decided without I/O: the plans, the rate-limit questions they raise,
and the final decisions once the limiter has answered them.

The shell (:mod:`router_svc.inputs`) loads the facts and calls :func:`route` (a batch of
new notifications) or :func:`release` (held deliveries whose time has come); both answer a
:class:`Pending`: a plan per notification (or delivery) and the :class:`Question` of every
send that needs a rate-limit slot. The shell asks the limiter all of them in one round and
hands the answers to :func:`settle`, which turns each refused send into the over-limit
decision (:func:`router_svc.plan.over_limit`) and leaves every other decision as planned.
A slot is asked for a send only, so one is counted only for a send that goes out.
:func:`recorded` picks the decisions worth a delivery record (every channel something
happened on: not those the plan never considered), and :func:`status_of` names the
delivery status each is recorded with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notify_core.domain import Channel, DeliveryStatus
from notify_core.ratelimit import Verdict
from router_svc.plan import (
    Action,
    Config,
    Decision,
    Earlier,
    Facts,
    Held,
    Plan,
    Preferences,
    over_limit,
    plan,
)
from router_svc.plan import release as release_one

GroupKey = tuple[str, str, str]
"""(user, type, group key): the sends that may merge into one inbox entry."""

STATUS: Mapping[Action, DeliveryStatus] = {
    Action.HOLD: DeliveryStatus.HELD,
    Action.MERGE: DeliveryStatus.MERGED,
    Action.DIGEST: DeliveryStatus.DIGESTED,
    Action.SKIP: DeliveryStatus.SKIPPED,
}


def recorded(p: Plan) -> Iterator[Decision]:
    """The decisions to record: sent, held, merged, digested, or skipped by the user's or
    the producer's choice. A channel the plan never considered gets no record; the
    deliveries listing explains it from the notification (``plan.unchosen_reason``)."""
    return (d for d in p.decisions if d.candidate)


def status_of(decision: Decision) -> DeliveryStatus:
    """The delivery status a decision is recorded with: a send is ``delivered`` at once
    in-app (the inbox is the delivery) and ``pending`` for a delivery worker elsewhere."""
    if decision.action is Action.SEND:
        return (
            DeliveryStatus.DELIVERED
            if decision.channel == Channel.INAPP
            else DeliveryStatus.PENDING
        )
    return STATUS[decision.action]


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification as the router reads it."""

    id: str
    user_id: str
    type: str
    priority: str
    channels: tuple[str, ...] | None
    group_key: str | None
    created_at: datetime
    title: str
    message: str
    data: Mapping[str, Any] | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Notification:
        channels = row["channels"]
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            type=row["type"],
            priority=row["priority"],
            channels=None if channels is None else tuple(channels),
            group_key=row["group_key"],
            created_at=row["created_at"],
            title=row["title"],
            message=row["message"],
            data=row["data"],
        )

    @property
    def facts(self) -> Facts:
        return Facts(self.type, self.priority, self.channels, self.group_key)

    @property
    def group(self) -> GroupKey | None:
        """Its group, or ``None`` when it carries no group key (it never merges)."""
        if self.group_key is None:
            return None
        return (self.user_id, self.type, self.group_key)


@dataclass(frozen=True, slots=True)
class HeldDelivery:
    """A held delivery whose time has come, with its notification."""

    delivery_id: str
    channel: str
    metadata: Mapping[str, Any]
    notification: Notification

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> HeldDelivery:
        """From a delivery's ``delivery_id``, ``channel`` and ``metadata`` joined with its
        notification's columns."""
        return cls(
            row["delivery_id"],
            row["channel"],
            row["metadata"] or {},
            Notification.from_row(row),
        )

    @property
    def reason(self) -> str:
        """Why it was held."""
        return str(self.metadata.get("reason", "held"))


@dataclass(frozen=True, slots=True)
class Question:
    """A send that needs a rate-limit slot: one user and channel, with the notification's
    type (whose own rule, if it has one, is asked first). ``ref`` is the notification (or
    the held delivery) the send belongs to."""

    ref: str
    user_id: str
    type: str
    channel: str


@dataclass(frozen=True, slots=True)
class Batch:
    """The facts a batch of new notifications is routed on."""

    notifications: Sequence[Notification]
    preferences: Mapping[str, Preferences]
    """By user."""
    online: Mapping[str, bool]
    """By user."""
    heads: Mapping[GroupKey, Earlier]
    """The newest inbox entry of each group, from before this batch."""
    now: datetime


@dataclass(frozen=True, slots=True)
class Pending:
    """Plans waiting for the rate limiter's answers to ``questions``."""

    plans: Mapping[str, Plan]
    """By notification (:func:`route`) or held delivery (:func:`release`) id, in order."""
    questions: tuple[Question, ...]
    now: datetime
    config: Config


def route(batch: Batch, config: Config) -> Pending:
    """Plan every notification of the batch, oldest first, so that within a batch the later
    ones of a group merge into the first that reached the inbox."""
    heads = dict(batch.heads)
    plans: dict[str, Plan] = {}
    owners: list[tuple[str, str, str]] = []
    for n in sorted(batch.notifications, key=lambda n: n.created_at):
        key = n.group
        head = None if key is None else heads.get(key)
        fresh = head is None or batch.now - head.at >= config.window_for(n.type)
        planned = plan(
            n.facts,
            batch.preferences[n.user_id],
            online=batch.online[n.user_id],
            earlier=None if fresh else head,
            rates={},
            now=batch.now,
            config=config,
        )
        plans[n.id] = planned
        owners.append((n.id, n.user_id, n.type))
        if key is not None and fresh and planned.sends(Channel.INAPP):
            heads[key] = Earlier(n.id, n.created_at)  # the group's inbox entry now
    return Pending(plans, _questions(plans, owners), batch.now, config)


def release(
    held: Sequence[HeldDelivery],
    preferences: Mapping[str, Preferences],
    now: datetime,
    config: Config,
) -> Pending:
    """Decide each held delivery again (:func:`router_svc.plan.release`): one plan of one
    decision per delivery id."""
    plans: dict[str, Plan] = {}
    owners: list[tuple[str, str, str]] = []
    for h in held:
        n = h.notification
        decision = release_one(
            Held(h.channel, h.reason),
            n.facts,
            preferences[n.user_id],
            verdict=None,
            now=now,
            config=config,
        )
        plans[h.delivery_id] = Plan((decision,))
        owners.append((h.delivery_id, n.user_id, n.type))
    return Pending(plans, _questions(plans, owners), now, config)


def _questions(
    plans: Mapping[str, Plan], owners: Iterable[tuple[str, str, str]]
) -> tuple[Question, ...]:
    """One question per send, in the order of ``owners`` (ref, user, type) and channels."""
    return tuple(
        Question(ref, user, type_, d.channel)
        for ref, user, type_ in owners
        for d in plans[ref].decisions
        if d.action is Action.SEND
    )


def settle(pending: Pending, answers: Sequence[Verdict]) -> dict[str, Plan]:
    """The final plans: each send whose question was refused takes the over-limit decision;
    everything else stays as planned. ``answers`` are in the order of the questions."""
    refused = {
        (q.ref, q.channel): verdict
        for q, verdict in zip(pending.questions, answers, strict=True)
        if not verdict.allowed
    }
    if not refused:
        return dict(pending.plans)
    return {
        ref: Plan(tuple(_answered(ref, d, refused, pending) for d in p.decisions))
        for ref, p in pending.plans.items()
    }


def _answered(
    ref: str, decision: Decision, refused: Mapping[tuple[str, str], Verdict], pending: Pending
) -> Decision:
    verdict = refused.get((ref, decision.channel))
    if verdict is None:
        return decision
    return over_limit(decision.channel, verdict, pending.now, pending.config)
