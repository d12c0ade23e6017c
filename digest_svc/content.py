"""What a user's digest says, or why they get none: pure functions of their items and
preferences.

The items are the notifications whose email the routing plan put aside (low priority, or
over the email rate limit: delivery status ``digested``). :func:`decide` answers, for one
user, either :class:`Send` with the digest, or :class:`Skip` with the reason and whether
the period is settled (the schedule moves on) or the user is to be tried again.

Grouping: items are grouped by type; a group counts its notifications (a merged one counts
as many as it merged) and the distinct things they are about, its group keys. Keys written
``noun:id`` name the thing, so twelve comments under the keys ``post:1``, ``post:2`` and
``post:3`` read "12 new comments on 3 posts". Groups are listed largest first; each shows
its newest few items.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notify_core.constants import DIGEST_ITEMS_SHOWN

NOTHING_NEW = "nothing new"
ALL_FILTERED = "everything switched off by the user"
UNSUBSCRIBED = "unsubscribed from digests"
EMAIL_OFF = "email switched off"
NO_ADDRESS = "no email address"
SUPPRESSED = "address suppressed"
ALREADY_SENT = "already sent for this period"
RATE_LIMITED = "rate limited"
TYPE_SWITCHED_OFF = "type switched off by the user before the digest"
"""What the items of a type switched off since they were put aside are marked with."""


@dataclass(frozen=True, slots=True)
class Item:
    """One notification put aside for the digest (its ``email`` delivery row)."""

    delivery_id: str
    notification_id: str
    type: str
    title: str
    message: str
    group_key: str | None
    count: int
    locale: str | None
    created_at: datetime
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Group:
    type: str
    count: int
    """Notifications, merged ones counted as many as they merged."""
    subjects: int
    """Distinct things they are about (group keys); 0 when they carry none."""
    summary: str
    """The sentence: "12 new comments on 3 posts"."""
    shown: tuple[Item, ...]
    """The newest ones, at most ``DIGEST_ITEMS_SHOWN``."""
    more: int
    """Items not shown."""


@dataclass(frozen=True, slots=True)
class Digest:
    groups: tuple[Group, ...]
    items: tuple[Item, ...]
    """Every item it carries (all marked when it is recorded)."""
    total: int
    summary: str
    """The groups' summaries in one sentence."""
    locale: str | None
    """The newest item's locale, for the template lookup."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """What :func:`decide` needs of the user besides the items."""

    email: str | None
    allows: Callable[[str], bool]
    """Whether email of a type is allowed (the per-type switch, else the channel's)."""
    email_on: bool = True
    """The email channel's own switch (names the reason when nothing is allowed)."""
    unsubscribed: bool = False
    """Digests switched off by email (type ``digest``; a one-click unsubscribe does it)."""
    suppressed: str | None = None
    """Why the address is on the suppression list, if it is."""


@dataclass(frozen=True, slots=True)
class Send:
    digest: Digest
    dropped: tuple[Item, ...] = ()
    """Items of types switched off since: marked, not sent."""


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str
    settled: bool = True
    """True: the period is done and the schedule moves on; False: try again later."""
    dropped: tuple[Item, ...] = ()


Outcome = Send | Skip


def plural(word: str, n: int) -> str:
    """English plural of ``word`` for ``n`` (naive, enough for type and thing names)."""
    if n == 1 or not word:
        return word
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def _label(type_: str) -> str:
    return type_.replace("_", " ").replace("-", " ").strip() or type_


def _noun(keys: set[str]) -> str:
    """What the group keys name: the shared ``noun`` of ``noun:id`` keys, else "thread"."""
    nouns = {k.partition(":")[0] for k in keys if ":" in k}
    if len(nouns) == 1 and all(":" in k for k in keys):
        noun = _label(nouns.pop())
        if noun:
            return noun
    return "thread"


def summarize(type_: str, count: int, keys: set[str]) -> str:
    """The sentence of one group: "12 new comments on 3 posts", "1 new mention", "4 new
    replies in 2 threads"."""
    label = _label(type_)
    words = label.split(" ")
    words[-1] = plural(words[-1], count)
    text = " ".join(words)
    if not text.startswith("new "):
        text = f"new {text}"
    out = f"{count} {text}"
    if keys:
        noun = _noun(keys)
        preposition = "on" if noun != "thread" else "in"
        out += f" {preposition} {len(keys)} {plural(noun, len(keys))}"
    return out


def join_summaries(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def group(items: Sequence[Item], shown: int = DIGEST_ITEMS_SHOWN) -> tuple[Group, ...]:
    """Items by type, largest group first (then by type name); newest items first."""
    by_type: dict[str, list[Item]] = {}
    for item in items:
        by_type.setdefault(item.type, []).append(item)
    groups = []
    for type_, members in by_type.items():
        members.sort(key=lambda i: i.created_at, reverse=True)
        count = sum(max(1, i.count) for i in members)
        keys = {i.group_key for i in members if i.group_key and i.group_key != type_}
        groups.append(
            Group(
                type=type_,
                count=count,
                subjects=len(keys),
                summary=summarize(type_, count, keys),
                shown=tuple(members[:shown]),
                more=max(0, len(members) - shown),
            )
        )
    groups.sort(key=lambda g: (-g.count, g.type))
    return tuple(groups)


def build(items: Sequence[Item], shown: int = DIGEST_ITEMS_SHOWN) -> Digest:
    groups = group(items, shown)
    newest = max(items, key=lambda i: i.created_at) if items else None
    return Digest(
        groups=groups,
        items=tuple(items),
        total=sum(g.count for g in groups),
        summary=join_summaries([g.summary for g in groups]),
        locale=newest.locale if newest is not None else None,
    )


def decide(recipient: Recipient, items: Sequence[Item], *, already_sent: bool) -> Outcome:
    """The digest of one user for the period due, or why there is none.

    Reasons about the user (unsubscribed, no address, suppressed) leave the items as they
    are, for a later period; items of a type whose email was switched off since they were
    put aside are dropped (marked, never sent)."""
    if already_sent:
        return Skip(ALREADY_SENT)
    if recipient.unsubscribed:
        return Skip(UNSUBSCRIBED)
    if not recipient.email:
        return Skip(NO_ADDRESS)
    if recipient.suppressed is not None:
        return Skip(SUPPRESSED)
    kept = [i for i in items if recipient.allows(i.type)]
    dropped = tuple(i for i in items if not recipient.allows(i.type))
    if kept:
        return Send(build(kept), dropped)
    if not dropped:
        return Skip(NOTHING_NEW)
    return Skip(ALL_FILTERED if recipient.email_on else EMAIL_OFF, dropped=dropped)
