"""The text of an SMS, and how many segments it costs (pure).

**The text** is the template's SMS body when there is one, else ``title: message`` (only
the one that is not empty, when the other is).

**Segments.** A text whose every character is in the GSM 03.38 alphabet goes as GSM-7:
the basic set costs one septet a character, the extension table (``^{}\\[~]|€`` and form
feed) two (an escape and the character). Anything else makes the whole text UCS-2, counted
in UTF-16 code units (a character beyond the Basic Multilingual Plane, most emoji, is a
surrogate pair: two). One segment holds 160 septets or 70 units; a longer text is sent
in parts of 153 septets or 67 units (the rest is the concatenation header). A part never
ends between an escape and its character, nor between the two halves of a surrogate
pair, so the parts are packed the way phones and providers pack them, not by division.

**Cutting.** A text longer than ``max_segments`` segments (``NOTIFY_SMS_MAX_SEGMENTS``,
default 3) is cut to the longest prefix that, with an ellipsis, fits; trailing spaces
before the ellipsis go. The ellipsis is ``...`` when the kept text is GSM-7 and ``…``
(U+2026) when it is UCS-2 anyway: ``…`` is not in the GSM alphabet, and one such
character would turn a GSM-7 text into UCS-2, cutting its room by more than half. Cuts
are made between code points, so a surrogate pair is never split (an emoji sequence
joined by ZWJ may lose its tail, which shows as its first emoji).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from notify_core.settings_decl import Setting, whole

GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 basic character set (without the escape, 0x1B)."""
GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")
"""The extension table: each costs two septets (escape + character)."""

GSM7_SINGLE: Final = 160
GSM7_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67
GSM7_ELLIPSIS: Final = "..."
UCS2_ELLIPSIS: Final = "\u2026"

MAX_SEGMENTS_SETTING: Final = "NOTIFY_SMS_MAX_SEGMENTS"
DEFAULT_MAX_SEGMENTS: Final = 3
MAX_MAX_SEGMENTS: Final = 10
"""Twilio takes at most 1,600 characters: ten parts of GSM-7."""

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class Segments:
    """What a text costs: its encoding, its length in septets (GSM-7) or UTF-16 code
    units (UCS-2), and the number of segments it is sent in."""

    encoding: Encoding
    units: int
    count: int


def sms_text(title: str, message: str, sms_body: str | None = None) -> str:
    """The text to send: the template's SMS body when given, else ``title: message``."""
    if sms_body is not None and sms_body.strip():
        return sms_body.strip()
    title, message = title.strip(), message.strip()
    if title and message:
        return f"{title}: {message}"
    return title or message


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 alphabet (basic or extension)."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _costs(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _parts(costs: list[int], part: int) -> int:
    """Parts of ``part`` units each, none splitting a character."""
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return count


def segments(text: str) -> Segments:
    """The encoding, length and segment count of ``text`` (an empty text is one segment)."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    costs = _costs(text, encoding)
    units = sum(costs)
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_PART)
    count = 1 if units <= single else _parts(costs, part)
    return Segments(encoding, units, count)


def _with_ellipsis(prefix: str) -> str:
    kept = prefix.rstrip()
    return kept + (GSM7_ELLIPSIS if is_gsm7(kept) else UCS2_ELLIPSIS)


def fit(text: str, max_segments: int = DEFAULT_MAX_SEGMENTS) -> str:
    """``text`` when it fits in ``max_segments``; else its longest prefix that fits with
    the ellipsis (see the module's docstring)."""
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if segments(text).count <= max_segments:
        return text
    lo, hi = 0, len(text)  # the prefix text[:lo] fits with its ellipsis; text[:hi] does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if segments(_with_ellipsis(text[:mid])).count <= max_segments:
            lo = mid
        else:
            hi = mid
    return _with_ellipsis(text[:lo])


MAX_SEGMENTS: Setting[int] = Setting(
    MAX_SEGMENTS_SETTING,
    whole(1, MAX_MAX_SEGMENTS),
    DEFAULT_MAX_SEGMENTS,
    "longer SMS texts are cut, with an ellipsis, to this many GSM-7/UCS-2 segments",
)


def max_segments(env: Mapping[str, str]) -> int:
    """``NOTIFY_SMS_MAX_SEGMENTS``: a whole number from 1 to 10, default 3."""
    return MAX_SEGMENTS.read(env)
