"""Input checks shared by every service: identifiers and text fields, one message shape.

A free-text field (a user id, a notification type, a title, a key) is checked the same way
wherever it arrives — REST, gRPC, a WebSocket frame, a token — and refused with the same
words, naming the field:

- ``must be a string, got number`` (JSON input of another type);
- ``is required and must not be blank`` (empty or only whitespace, when required);
- ``must be at most 255 characters, got 300``;
- what :func:`~notify_core.storable.check_text` says of text that cannot be stored.
"""

from __future__ import annotations

from typing import Any

from notify_core.constants import MAX_TYPE, MAX_USER_ID
from notify_core.errors import InvalidArgument
from notify_core.storable import check_text


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    return "string"


def check_field(value: Any, field: str, limit: int, *, required: bool = True) -> str:
    """``value`` when it is a string of at most ``limit`` characters that can be stored
    (and, when ``required``, not blank); otherwise ``InvalidArgument(field, …)``."""
    if not isinstance(value, str):
        raise InvalidArgument(field, f"must be a string, got {json_type(value)}")
    if required and not value.strip():
        raise InvalidArgument(field, "is required and must not be blank")
    if len(value) > limit:
        raise InvalidArgument(field, f"must be at most {limit} characters, got {len(value)}")
    return check_text(value, field)


def check_user_id(value: Any, field: str = "user_id") -> str:
    """A user id: 1 to ``MAX_USER_ID`` characters, not blank."""
    return check_field(value, field, MAX_USER_ID)


def check_type(value: Any, field: str = "type") -> str:
    """A notification type: 1 to ``MAX_TYPE`` characters, not blank."""
    return check_field(value, field, MAX_TYPE)
