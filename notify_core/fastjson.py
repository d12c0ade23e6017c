"""JSON out of Notify, encoded in one place by orjson: compact UTF-8, the same text the
standard library writes with ``separators=(",", ":")`` and ``ensure_ascii=False``, 10-25
times faster (a live event, an inbox page). Keys that are ``str`` subclasses (the domain's
``StrEnum`` values) are written as their text."""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes."""
    return orjson.dumps(value, option=_OPTIONS)
