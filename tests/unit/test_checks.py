"""Shared input checks: one message shape for every identifier, wherever it arrives."""

from __future__ import annotations

from typing import Any

import pytest

from notify_core.checks import check_field, check_type, check_user_id
from notify_core.errors import InvalidArgument


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "user_id: must be a string, got null"),
        (7, "user_id: must be a string, got number"),
        ("", "user_id: is required and must not be blank"),
        (" \t", "user_id: is required and must not be blank"),
        ("u" * 256, "user_id: must be at most 255 characters, got 256"),
    ],
)
def test_a_bad_user_id_is_refused_naming_the_field(value: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_user_id(value)
    assert str(caught.value) == message


def test_unstorable_text_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_user_id("a\x00b", "user_ids[3]")
    assert caught.value.field == "user_ids[3]"


def test_good_values_come_back_unchanged() -> None:
    assert check_user_id("u" * 255) == "u" * 255
    assert check_user_id("usér/ø 1", "token.sub") == "usér/ø 1"
    assert check_type("billing.invoice") == "billing.invoice"
    assert check_field("", "group_key", 10, required=False) == ""


def test_a_type_has_its_own_limit() -> None:
    with pytest.raises(InvalidArgument, match=r"^type: must be at most 50 characters, got 51$"):
        check_type("t" * 51)
