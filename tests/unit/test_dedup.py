"""The text of merged notifications."""

from __future__ import annotations

import pytest

from router_svc.dedup import actor_of, highest, merged_message


@pytest.mark.parametrize(
    ("message", "actor", "count", "expected"),
    [
        ("Alice commented on your post", "Alice", 1, "Alice commented on your post"),
        ("Bob commented on your post", "Bob", 2, "Bob and 1 other commented on your post"),
        ("Alice commented on your post", "Alice", 4, "Alice and 3 others commented on your post"),
        ("New comment", None, 3, "New comment (+2 more)"),
        ("Someone replied", "Carol", 2, "Someone replied (+1 more)"),
    ],
)
def test_merged_message(message: str, actor: str | None, count: int, expected: str) -> None:
    assert merged_message(message, actor, count) == expected


def test_actor_comes_from_data_and_must_be_text() -> None:
    assert actor_of({"actor": "Alice"}) == "Alice"
    assert actor_of({"actor": 3}) is None
    assert actor_of({"actor": "  "}) is None
    assert actor_of(None) is None


@pytest.mark.parametrize(
    ("priorities", "expected"),
    [
        (["low"], "low"),
        (["normal", "low"], "normal"),
        (["low", "high", "normal"], "high"),
        (["normal", "normal"], "normal"),
    ],
)
def test_a_merged_entry_keeps_the_highest_priority(priorities: list[str], expected: str) -> None:
    assert highest(priorities) == expected
