"""The routing plan: a pure function of its inputs and a clock.

``plan(notification, preferences, online, history, rates, now)`` answers, for every
channel, one :class:`Decision`: send now, hold until a time, merge into an earlier
notification, put in the digest, or skip — each with a reason. Nothing here does I/O.

The steps, in order (the first that decides a channel wins):

1. **Matrix** (the original design), when the producer names no ``channels``: high +
   offline → push, SMS, email; high + online → push; normal + online → in-app/live only;
   normal + offline → push + email; low → email digest. In-app (the inbox) is always a
   candidate; web push follows push; the webhook channel follows the user's webhook URL.
   A channel the matrix (or the request) never considers is skipped with
   ``candidate=False``: :func:`unchosen_reason` names why, and it is not recorded.
2. **Request**: a producer's explicit ``channels`` replaces the matrix: each named channel
   is sent, whatever the priority and presence, and no other (in-app only when named).
3. **Preferences**: a channel switched off (for every type or for this type), or one
   without its contact point, is skipped.
4. **Grouping** (opt-in): a send that carries a ``group_key`` and goes to the inbox merges
   into the earlier inbox entry of the same user, type and group key within its window.
   Without a group key nothing merges.
5. **Quiet hours**: interruptive channels (push, web push, SMS, email) are held until the
   window ends, unless the notification is high priority and may break through.
6. **Rate limits**: over the limit, email goes to the digest; other channels are held
   until the window frees a slot, or skipped, by configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from notify_core.domain import CHANNELS, DEFAULT_SWITCHES, INTERRUPTIVE, Channel, Priority
from notify_core.ratelimit import Verdict
from router_svc.quiet_hours import QuietHours, quiet_until


class Action(StrEnum):
    SEND = "send"
    HOLD = "hold"
    MERGE = "merge"
    DIGEST = "digest"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Decision:
    channel: str
    action: Action
    reason: str
    until: datetime | None = None
    merge_into: str | None = None
    candidate: bool = True
    """False for a channel neither the matrix nor the producer's ``channels`` considered:
    nothing happened on it, so it needs no delivery record."""


@dataclass(frozen=True, slots=True)
class Plan:
    decisions: tuple[Decision, ...]

    def unchosen(self) -> tuple[str, ...]:
        """The channels never considered (skipped with :func:`unchosen_reason`)."""
        return tuple(d.channel for d in self.decisions if not d.candidate)

    def sends(self, channel: str) -> bool:
        return self.action(channel) is Action.SEND

    def action(self, channel: str) -> Action:
        for d in self.decisions:
            if d.channel == channel:
                return d.action
        return Action.SKIP

    def merge_into(self) -> str | None:
        """The earlier notification this one merges into, if it does."""
        for d in self.decisions:
            if d.action is Action.MERGE:
                return d.merge_into
        return None

    def decision(self, channel: str) -> Decision:
        for d in self.decisions:
            if d.channel == channel:
                return d
        raise KeyError(channel)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the plan needs of the notification."""

    type: str
    priority: str = Priority.NORMAL
    channels: Sequence[str] | None = None
    group_key: str | None = None


@dataclass(frozen=True, slots=True)
class Preferences:
    switches: Mapping[str, bool] = field(default_factory=lambda: dict(DEFAULT_SWITCHES))
    per_type: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None
    high_breaks_quiet_hours: bool = True
    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None
    has_push_device: bool = False
    has_webpush_subscription: bool = False

    def allows(self, channel: str, type_: str) -> bool:
        override = self.per_type.get(type_, {}).get(channel)
        if override is not None:
            return override
        return self.switches.get(channel, DEFAULT_SWITCHES.get(channel, False))

    def contact_missing(self, channel: str) -> str | None:
        """Why ``channel`` cannot reach the user, or ``None``."""
        needs: dict[str, tuple[object, str]] = {
            Channel.EMAIL: (self.email, "no email address"),
            Channel.SMS: (self.phone, "no phone number"),
            Channel.WEBHOOK: (self.webhook_url, "no webhook URL"),
            Channel.PUSH: (self.has_push_device or None, "no registered device"),
            Channel.WEBPUSH: (self.has_webpush_subscription or None, "no web push subscription"),
        }
        missing = needs.get(channel)
        if missing is not None and not missing[0]:
            return missing[1]
        return None


@dataclass(frozen=True, slots=True)
class Earlier:
    """The earlier inbox entry of the same user, type and group key, if any."""

    id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Config:
    dedup_window: timedelta = timedelta(hours=1)
    dedup_window_by_type: Mapping[str, timedelta] = field(default_factory=dict)
    over_limit: Mapping[str, str] = field(default_factory=dict)
    """Per channel: "defer" (hold until the window frees a slot; the default) or "drop"."""

    def window_for(self, type_: str) -> timedelta:
        return self.dedup_window_by_type.get(type_, self.dedup_window)

    def drops_over_limit(self, channel: str) -> bool:
        return self.over_limit.get(channel, "defer") == "drop"


@dataclass(frozen=True, slots=True)
class Held:
    """A channel held earlier, looked at again once its time has come."""

    channel: str
    reason: str


def matrix(priority: str, online: bool, preferences: Preferences) -> dict[str, tuple[Action, str]]:
    """Step 1: the candidate channels for this priority and presence."""
    chosen: dict[str, tuple[Action, str]] = {Channel.INAPP: (Action.SEND, "in-app inbox")}
    if priority == Priority.HIGH:
        chosen[Channel.PUSH] = (Action.SEND, "high priority")
        if not online:
            chosen[Channel.SMS] = (Action.SEND, "high priority, user offline")
            chosen[Channel.EMAIL] = (Action.SEND, "high priority, user offline")
    elif priority == Priority.NORMAL:
        if not online:
            chosen[Channel.PUSH] = (Action.SEND, "user offline")
            chosen[Channel.EMAIL] = (Action.SEND, "user offline")
    else:
        chosen[Channel.EMAIL] = (Action.DIGEST, "low priority goes to the digest")
    if Channel.PUSH in chosen:
        chosen[Channel.WEBPUSH] = chosen[Channel.PUSH]
    if preferences.webhook_url:
        chosen[Channel.WEBHOOK] = (Action.SEND, "user has a webhook")
    return chosen


def candidates(
    facts: Facts, online: bool, preferences: Preferences
) -> dict[str, tuple[Action, str]]:
    """Steps 1 and 2: the producer's channels when named, else the matrix's."""
    if facts.channels is None:
        return matrix(facts.priority, online, preferences)
    return {c: (Action.SEND, "requested by the producer") for c in facts.channels}


def unchosen_reason(channels: Sequence[str] | None) -> str:
    """Why a channel was never considered, given the producer's ``channels`` (or None)."""
    if channels is None:
        return "not chosen for this priority"
    return "not requested by the producer"


def _excluded(channel: str, type_: str, preferences: Preferences) -> str | None:
    """Step 3: why the user cannot be reached on ``channel`` for this type, or ``None``."""
    if not preferences.allows(channel, type_):
        return "switched off by the user"
    return preferences.contact_missing(channel)


def _timing(
    channel: str,
    reason: str,
    facts: Facts,
    preferences: Preferences,
    quiet_end: datetime | None,
    verdict: Verdict | None,
    now: datetime,
    config: Config,
) -> Decision:
    """Steps 5 and 6 for a channel about to be sent: quiet hours, then the rate limit."""
    if (
        quiet_end is not None
        and channel in INTERRUPTIVE
        and not (facts.priority == Priority.HIGH and preferences.high_breaks_quiet_hours)
    ):
        return Decision(channel, Action.HOLD, "quiet hours", until=quiet_end)
    if verdict is not None and not verdict.allowed:
        return over_limit(channel, verdict, now, config)
    return Decision(channel, Action.SEND, reason)


def over_limit(channel: str, verdict: Verdict, now: datetime, config: Config) -> Decision:
    """Step 6 for a send its rate limit refused: email goes to the digest; other channels
    are skipped or held until the window frees a slot, as ``config.over_limit`` says."""
    if channel == Channel.EMAIL:
        return Decision(channel, Action.DIGEST, "rate limited: to the digest")
    if config.drops_over_limit(channel):
        return Decision(channel, Action.SKIP, "rate limited: dropped")
    until = now + timedelta(seconds=verdict.retry_after)
    return Decision(channel, Action.HOLD, "rate limited", until=until)


def plan(
    facts: Facts,
    preferences: Preferences,
    *,
    online: bool,
    earlier: Earlier | None,
    rates: Mapping[str, Verdict],
    now: datetime,
    config: Config | None = None,
) -> Plan:
    config = config or Config()
    chosen = candidates(facts, online, preferences)
    quiet_end = quiet_until(preferences.quiet_hours, now)
    window = config.window_for(facts.type)
    to_inbox = Channel.INAPP in chosen and _excluded(Channel.INAPP, facts.type, preferences) is None
    merge = (
        facts.group_key is not None
        and to_inbox
        and earlier is not None
        and now - earlier.at < window
    )
    unchosen = unchosen_reason(facts.channels)
    decisions: list[Decision] = []
    for channel in CHANNELS:
        if channel not in chosen:
            decisions.append(Decision(channel, Action.SKIP, unchosen, candidate=False))
            continue
        action, reason = chosen[channel]
        excluded = _excluded(channel, facts.type, preferences)
        if excluded is not None:
            decision = Decision(channel, Action.SKIP, excluded)
        elif merge:
            assert earlier is not None
            decision = Decision(
                channel,
                Action.MERGE,
                f"same group key within {window}",
                merge_into=earlier.id,
            )
        elif action is Action.SEND:
            decision = _timing(
                channel, reason, facts, preferences, quiet_end, rates.get(channel), now, config
            )
        else:
            decision = Decision(channel, action, reason)
        decisions.append(decision)
    return Plan(tuple(decisions))


def release(
    held: Held,
    facts: Facts,
    preferences: Preferences,
    *,
    verdict: Verdict | None,
    now: datetime,
    config: Config | None = None,
) -> Decision:
    """What to do with a held channel now: the preferences, quiet hours and rate limit are
    looked at again (the user may have switched the channel off meanwhile, or a new quiet
    window may have begun); the matrix and dedup were settled when it was first planned."""
    excluded = _excluded(held.channel, facts.type, preferences)
    if excluded is not None:
        return Decision(held.channel, Action.SKIP, excluded)
    return _timing(
        held.channel,
        f"released after {held.reason}",
        facts,
        preferences,
        quiet_until(preferences.quiet_hours, now),
        verdict,
        now,
        config or Config(),
    )
