"""Digest content: grouping, aggregated sentences, and who gets none and why (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from digest_svc.content import (
    ALL_FILTERED,
    ALREADY_SENT,
    EMAIL_OFF,
    NO_ADDRESS,
    NOTHING_NEW,
    SUPPRESSED,
    UNSUBSCRIBED,
    Item,
    Recipient,
    Send,
    Skip,
    build,
    decide,
    join_summaries,
    plural,
    summarize,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
_ids = count()


def item(type_: str, key: str | None = None, *, n: int = 1, minutes: int = 0, **kw: object) -> Item:
    i = next(_ids)
    return Item(
        delivery_id=f"d{i}",
        notification_id=f"n{i}",
        type=type_,
        title=kw.pop("title", f"{type_} {i}"),  # type: ignore[arg-type]
        message="m",
        group_key=key,
        count=n,
        locale=kw.pop("locale", None),  # type: ignore[arg-type]
        created_at=T0 + timedelta(minutes=minutes),
    )


def everyone(type_: str) -> bool:
    return True


@pytest.mark.parametrize(
    ("word", "n", "out"),
    [
        ("comment", 2, "comments"),
        ("comment", 1, "comment"),
        ("reply", 3, "replies"),
        ("day", 2, "days"),
        ("match", 2, "matches"),
        ("box", 2, "boxes"),
        ("post", 0, "posts"),
    ],
)
def test_plural(word: str, n: int, out: str) -> None:
    assert plural(word, n) == out


@pytest.mark.parametrize(
    ("type_", "count_", "keys", "text"),
    [
        ("comment", 12, {"post:1", "post:2", "post:3"}, "12 new comments on 3 posts"),
        ("comment", 1, {"post:1"}, "1 new comment on 1 post"),
        ("mention", 2, set(), "2 new mentions"),
        ("reply", 4, {"a", "b"}, "4 new replies in 2 threads"),
        ("reply", 4, {"post:1", "issue:2"}, "4 new replies in 2 threads"),
        ("new_follower", 3, set(), "3 new followers"),
        (
            "pull-request_review",
            2,
            {"pull_request:7"},
            "2 new pull request reviews on 1 pull request",
        ),
    ],
)
def test_summaries(type_: str, count_: int, keys: set[str], text: str) -> None:
    assert summarize(type_, count_, keys) == text


def test_join_summaries() -> None:
    assert join_summaries([]) == ""
    assert join_summaries(["a"]) == "a"
    assert join_summaries(["a", "b", "c"]) == "a, b and c"


def test_grouped_by_type_largest_first_with_merged_counts_and_things() -> None:
    items = [
        *[item("comment", f"post:{i % 3}", minutes=i) for i in range(10)],
        item("comment", "post:0", n=2, minutes=30),  # a merged notification counts as two
        item("mention", minutes=5),
        item("mention", "mention", minutes=6),  # a key equal to the type names nothing
        item("follow", "user:9", minutes=7),
    ]
    digest = build(items, shown=3)
    assert [g.type for g in digest.groups] == ["comment", "mention", "follow"]
    comments, mentions, follows = digest.groups
    assert (comments.count, comments.subjects, comments.more) == (12, 3, 8)
    assert comments.summary == "12 new comments on 3 posts"
    assert [i.created_at for i in comments.shown] == sorted(
        (i.created_at for i in comments.shown), reverse=True
    )
    assert comments.shown[0].count == 2  # the newest
    assert mentions.summary == "2 new mentions"
    assert follows.summary == "1 new follow on 1 user"
    assert digest.total == 15
    assert digest.summary == (
        "12 new comments on 3 posts, 2 new mentions and 1 new follow on 1 user"
    )
    assert len(digest.items) == len(items)


def test_the_locale_is_the_newest_items() -> None:
    digest = build([item("a", minutes=1, locale="de"), item("a", minutes=9, locale="fr-CA")])
    assert digest.locale == "fr-CA"


def test_ties_are_ordered_by_type() -> None:
    digest = build([item("b"), item("a")])
    assert [g.type for g in digest.groups] == ["a", "b"]


def recipient(**kw: object) -> Recipient:
    return Recipient(**{"email": "u@example.com", "allows": everyone, **kw})  # type: ignore[arg-type]


def test_a_user_with_items_gets_a_digest() -> None:
    out = decide(recipient(), [item("comment")], already_sent=False)
    assert isinstance(out, Send) and out.digest.total == 1 and out.dropped == ()


def test_types_switched_off_since_are_dropped_not_sent() -> None:
    keep, drop = item("comment"), item("marketing")
    out = decide(recipient(allows=lambda t: t != "marketing"), [keep, drop], already_sent=False)
    assert isinstance(out, Send)
    assert out.digest.items == (keep,)
    assert out.dropped == (drop,)


@pytest.mark.parametrize(
    ("who", "items", "already", "reason", "settled", "drops"),
    [
        ({}, [], False, NOTHING_NEW, True, 0),
        ({}, ["comment"], True, ALREADY_SENT, True, 0),
        ({"unsubscribed": True}, ["comment"], False, UNSUBSCRIBED, True, 0),
        ({"email": None}, ["comment"], False, NO_ADDRESS, True, 0),
        ({"suppressed": "bounce"}, ["comment"], False, SUPPRESSED, True, 0),
        ({"allows": lambda t: False}, ["comment", "x"], False, ALL_FILTERED, True, 2),
        (
            {"allows": lambda t: False, "email_on": False},
            ["comment"],
            False,
            EMAIL_OFF,
            True,
            1,
        ),
    ],
)
def test_who_gets_no_digest_and_why(
    who: dict[str, object],
    items: list[str],
    already: bool,
    reason: str,
    settled: bool,
    drops: int,
) -> None:
    out = decide(recipient(**who), [item(t) for t in items], already_sent=already)
    assert isinstance(out, Skip)
    assert (out.reason, out.settled, len(out.dropped)) == (reason, settled, drops)
