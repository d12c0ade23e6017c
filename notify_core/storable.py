"""What any input may hold: checks every validator shares, pure, each error naming the field.

PostgreSQL stores neither NUL (U+0000) in text or JSON nor a lone surrogate (it is not
UTF-8); a NaN or infinite number has no JSON form; a whole number beyond
:data:`~notify_core.constants.MAX_JSON_INTEGER` does not survive the trip through a double;
nesting beyond :data:`~notify_core.constants.MAX_JSON_DEPTH` breaks protobuf's Struct. Each
is refused here with :class:`InvalidArgument` before anything is stored, so that one bad
value fails its own request and no other.

``loads`` is the one way a JSON request body becomes a value: malformed, too deep or holding
anything above, it answers ``InvalidArgument`` naming the field (``data.tags[2]``).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from notify_core.constants import MAX_JSON_DEPTH, MAX_JSON_INTEGER
from notify_core.errors import InvalidArgument


def text_problem(value: str) -> str | None:
    """What makes ``value`` unstorable, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode (it holds a lone surrogate)"
    return None


def check_text(value: str, field: str) -> str:
    """``value`` when it can be stored; otherwise ``InvalidArgument(field, …)``."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidArgument(field, problem)
    return value


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _index(path: str, i: int) -> str:
    return f"{path or 'body'}[{i}]"


def check_json(value: Any, field: str) -> None:
    """Every string (keys included), number and nesting level of ``value`` is storable;
    ``field`` is its path ('' for a whole body)."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, path or "body")
        elif item is None or isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_JSON_INTEGER:
                raise InvalidArgument(
                    path or "body", f"whole numbers must be within ±{MAX_JSON_INTEGER}"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidArgument(path or "body", "numbers must be finite (not NaN or ±∞)")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidArgument(
                    path or "body", f"must not nest more than {MAX_JSON_DEPTH} levels deep"
                )
            if isinstance(item, list):
                stack.extend((v, _index(path, i), depth + 1) for i, v in enumerate(item))
                continue
            for k, v in item.items():
                problem = text_problem(k) if isinstance(k, str) else "keys must be strings"
                if problem is not None:
                    raise InvalidArgument(path or "body", f"has a key that {problem}")
                stack.append((v, _key(path, k), depth + 1))
        else:
            raise InvalidArgument(path or "body", f"is not a JSON value ({type(item).__name__})")


def check_message(message: Message, path: str = "") -> None:
    """Every string of a protobuf request (nested messages, repeated fields and map keys
    too) is storable, or ``InvalidArgument`` naming the field (``notifications[3].title``).
    Well-known types (a ``Struct``'s data, timestamps) are left to the validators."""
    for fd, value in message.ListFields():
        name = path + fd.name
        if fd.type == FieldDescriptor.TYPE_STRING:
            for where, text in _items(name, fd, value):
                check_text(text, where)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            kind = fd.message_type
            if kind is None or kind.full_name.startswith("google.protobuf."):
                continue
            if kind.GetOptions().map_entry:
                for key, item in value.items():
                    check_text(str(key), name)
                    if isinstance(item, Message):
                        check_message(item, f"{name}.{key}.")
                    elif isinstance(item, str):
                        check_text(item, f"{name}.{key}")
            else:
                for where, item in _items(name, fd, value):
                    check_message(item, where + ".")


def _items(name: str, fd: FieldDescriptor, value: Any) -> list[tuple[str, Any]]:
    if fd.is_repeated:
        return [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [(name, value)]


def loads(body: bytes | str) -> Any:
    """The JSON value of a request body, checked by :func:`check_json`."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise InvalidArgument(
            "body", f"must not nest more than {MAX_JSON_DEPTH} levels deep"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("body", f"is not valid JSON ({exc})") from None
    check_json(value, "")
    return value


def timestamp_to_datetime(ts: timestamp_pb2.Timestamp, field: str) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime; out of range (past year 9999, before
    year 1, or nanos beyond a second) is ``InvalidArgument(field, …)``."""
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(field, "must be a time between the years 1 and 9999 (UTC)") from None


def to_utc(when: datetime, field: str) -> datetime:
    """``when`` (aware) in UTC; one whose offset takes it past year 9999 or before year 1
    is ``InvalidArgument(field, …)``."""
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument(field, "must be a time between the years 1 and 9999 (UTC)") from None
