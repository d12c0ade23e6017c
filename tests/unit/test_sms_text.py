"""The SMS text: what is sent, its encoding and segments, and how it is cut."""

from __future__ import annotations

import pytest

from delivery_svc.sms_text import Segments, fit, max_segments, segments, sms_text
from notify_core.errors import ConfigError

EMOJI = "\U0001f600"  # a surrogate pair in UTF-16


@pytest.mark.parametrize(
    ("title", "message", "body", "expected"),
    [
        ("Deploy", "finished", None, "Deploy: finished"),
        ("Deploy", "finished", "Your deploy is done", "Your deploy is done"),
        ("Deploy", "finished", "  ", "Deploy: finished"),
        ("", "finished", None, "finished"),
        ("Deploy", "", None, "Deploy"),
        (" Deploy ", " finished ", None, "Deploy: finished"),
    ],
)
def test_the_text_is_the_sms_body_else_title_and_message(
    title: str, message: str, body: str | None, expected: str
) -> None:
    assert sms_text(title, message, body) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Segments("GSM-7", 0, 1)),
        ("a" * 160, Segments("GSM-7", 160, 1)),
        ("a" * 161, Segments("GSM-7", 161, 2)),
        ("a" * 306, Segments("GSM-7", 306, 2)),
        ("a" * 307, Segments("GSM-7", 307, 3)),
        ("@£$¥èéùìòÇ ÄÖÑÜ§¿äöñüà ΔΦΓΛΩΠΨΣΘΞ", Segments("GSM-7", 33, 1)),
        ("€" * 80, Segments("GSM-7", 160, 1)),  # extension characters cost two
        ("€" * 81, Segments("GSM-7", 162, 2)),
        ("{}[]~|^\\", Segments("GSM-7", 16, 1)),
        # a part never ends between escape and character: 152 + 2 does not fit in 153
        ("a" * 152 + "€" + "a" * 152, Segments("GSM-7", 306, 3)),
        ("ç", Segments("UCS-2", 1, 1)),  # lower-case c cedilla is not GSM-7 (only Ç is)
        ("é" * 69 + "ç", Segments("UCS-2", 70, 1)),
        ("ç" * 71, Segments("UCS-2", 71, 2)),
        ("ç" * 134, Segments("UCS-2", 134, 2)),
        ("ç" * 135, Segments("UCS-2", 135, 3)),
        ("€" * 70 + "ç", Segments("UCS-2", 71, 2)),  # in UCS-2, € is one unit
        ("Привет", Segments("UCS-2", 6, 1)),
        (EMOJI * 35, Segments("UCS-2", 70, 1)),
        (EMOJI * 36, Segments("UCS-2", 72, 2)),
        # a surrogate pair is never split: 66 + 2 does not fit in 67
        ("ç" * 66 + EMOJI + "ç" * 66, Segments("UCS-2", 134, 3)),
        ("…", Segments("UCS-2", 1, 1)),
    ],
)
def test_segments(text: str, expected: Segments) -> None:
    assert segments(text) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 3, "short"),
        ("a" * 459, 3, "a" * 459),  # exactly three parts: untouched
        ("a" * 460, 3, "a" * 456 + "..."),
        ("a" * 161, 1, "a" * 157 + "..."),
        ("a" * 156 + "     " + "b" * 10, 1, "a" * 156 + "..."),  # no spaces before it
        ("ç" * 71, 1, "ç" * 69 + "…"),
        ("ç" * 300, 3, "ç" * 200 + "…"),
        (EMOJI * 40, 1, EMOJI * 34 + "…"),  # 68 + 1 units; a 35th would need 71
        ("€" * 200, 1, "€" * 78 + "..."),
        # the non-GSM character is cut off: the rest is GSM-7 and ends with "..."
        ("a" * 200 + "ç", 1, "a" * 157 + "..."),
        # the kept text is UCS-2 anyway: one "…"
        ("ç" + "a" * 200, 1, "ç" + "a" * 68 + "…"),
    ],
)
def test_fit_cuts_with_an_ellipsis(text: str, limit: int, expected: str) -> None:
    cut = fit(text, limit)
    assert cut == expected
    assert segments(cut).count <= limit


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("unit", ["a", "€", "ç", EMOJI, "a€", "aç" + EMOJI])
def test_a_cut_text_always_fits_and_keeps_whole_characters(unit: str, limit: int) -> None:
    text = unit * 2000
    cut = fit(text, limit)
    assert segments(cut).count <= limit
    assert cut.endswith(("...", "…"))
    assert text.startswith(cut.removesuffix("...").removesuffix("…"))
    cut.encode("utf-16-le")  # no lone surrogate


def test_fit_refuses_zero_segments() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        fit("text", 0)


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, 3), ({"NOTIFY_SMS_MAX_SEGMENTS": ""}, 3), ({"NOTIFY_SMS_MAX_SEGMENTS": "1"}, 1)],
)
def test_max_segments_setting(env: dict[str, str], expected: int) -> None:
    assert max_segments(env) == expected


@pytest.mark.parametrize("raw", ["0", "11", "three", "-1"])
def test_max_segments_refuses_bad_values(raw: str) -> None:
    with pytest.raises(ConfigError, match="NOTIFY_SMS_MAX_SEGMENTS"):
        max_segments({"NOTIFY_SMS_MAX_SEGMENTS": raw})
