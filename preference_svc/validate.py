"""Validation of the preferences a user or producer writes: pure, every error names the
field (``InvalidArgument``), and nothing is half-applied — the whole body is checked
before anything is stored.

The JSON shape (every field optional; an omitted field keeps its current value)::

    {
      "channels": {"inapp": true, "email": true, "sms": false, "push": true,
                   "webpush": true, "webhook": false},
      "per_type": {"comment": {"email": false}},
      "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris",
                      "high_breaks_through": true},          # or null: none
      "digest": {"enabled": true, "frequency": "daily" | "weekly", "hour": 9,
                 "weekday": 1},                               # weekday 1 = Monday
      "email": "a@example.com", "phone": "+14155550100",
      "webhook_url": "https://hooks.example.com/notify"
    }
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from enum import Enum
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from notify_core.checks import check_type
from notify_core.domain import CHANNELS
from notify_core.errors import InvalidArgument
from notify_core.storable import check_text

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
FIELDS = {"channels", "per_type", "quiet_hours", "digest", "email", "phone", "webhook_url"}
MAX_TYPES = 200


@dataclass(frozen=True, slots=True)
class QuietHoursInput:
    start: time
    end: time
    timezone: str
    high_breaks_through: bool


@dataclass(frozen=True, slots=True)
class DigestInput:
    enabled: bool
    frequency: str
    hour: int
    weekday: int


class Unset(Enum):
    """An omitted field: the current value stays."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True, slots=True)
class PreferencesUpdate:
    channels: dict[str, bool] | Unset = UNSET
    per_type: dict[str, dict[str, bool]] | Unset = UNSET
    quiet_hours: QuietHoursInput | Unset | None = UNSET
    digest: DigestInput | Unset = UNSET
    email: str | Unset | None = UNSET
    phone: str | Unset | None = UNSET
    webhook_url: str | Unset | None = UNSET


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(field, f"must be an object, got {_kind(value)}")
    return value


def _switches(value: Any, field: str) -> dict[str, bool]:
    switches = {}
    for channel, on in _object(value, field).items():
        if channel not in CHANNELS:
            raise InvalidArgument(
                f"{field}.{channel}", f"unknown channel; one of {', '.join(CHANNELS)}"
            )
        if not isinstance(on, bool):
            raise InvalidArgument(f"{field}.{channel}", f"must be true or false, got {_kind(on)}")
        switches[channel] = on
    return switches


def _clock(value: Any, field: str) -> time:
    if not isinstance(value, str) or not (m := HHMM.match(value)):
        raise InvalidArgument(field, f"must be a time HH:MM from 00:00 to 23:59, got {value!r}")
    return time(int(m.group(1)), int(m.group(2)))


def _zone(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(field, "must be an IANA time zone name such as Europe/Paris")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(field, f"unknown time zone {value!r}") from None
    return value


def _quiet_hours(value: Any) -> QuietHoursInput | None:
    if value is None:
        return None
    body = _object(value, "quiet_hours")
    unknown = sorted(set(body) - {"start", "end", "timezone", "high_breaks_through"})
    if unknown:
        raise InvalidArgument(f"quiet_hours.{unknown[0]}", "is not a known field")
    for name in ("start", "end", "timezone"):
        if name not in body:
            raise InvalidArgument(f"quiet_hours.{name}", "is required")
    start = _clock(body["start"], "quiet_hours.start")
    end = _clock(body["end"], "quiet_hours.end")
    if start == end:
        raise InvalidArgument("quiet_hours.end", "must differ from quiet_hours.start")
    breaks = body.get("high_breaks_through", True)
    if not isinstance(breaks, bool):
        raise InvalidArgument("quiet_hours.high_breaks_through", "must be true or false")
    return QuietHoursInput(start, end, _zone(body["timezone"], "quiet_hours.timezone"), breaks)


def _digest(value: Any) -> DigestInput:
    body = _object(value, "digest")
    unknown = sorted(set(body) - {"enabled", "frequency", "hour", "weekday"})
    if unknown:
        raise InvalidArgument(f"digest.{unknown[0]}", "is not a known field")
    enabled = body.get("enabled", False)
    if not isinstance(enabled, bool):
        raise InvalidArgument("digest.enabled", "must be true or false")
    frequency = body.get("frequency", "daily")
    if frequency not in ("daily", "weekly"):
        raise InvalidArgument("digest.frequency", f"must be daily or weekly, got {frequency!r}")
    hour = body.get("hour", 9)
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise InvalidArgument("digest.hour", f"must be a whole hour from 0 to 23, got {hour!r}")
    weekday = body.get("weekday", 1)
    if isinstance(weekday, bool) or not isinstance(weekday, int) or not 1 <= weekday <= 7:
        raise InvalidArgument(
            "digest.weekday", f"must be 1 (Monday) to 7 (Sunday), got {weekday!r}"
        )
    return DigestInput(enabled, frequency, hour, weekday)


def _email(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument("email", f"must be a string, got {_kind(value)}")
    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InvalidArgument("email", f"is not a valid address: {exc}") from None


def _phone(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not E164.match(value):
        raise InvalidArgument("phone", f"must be in E.164 form such as +14155550100, got {value!r}")
    return value


def _webhook_url(value: Any, allow_http: bool) -> str | None:
    if value is None:
        return None
    schemes = ("https", "http") if allow_http else ("https",)
    what = "an http(s) URL" if allow_http else "an https URL"
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidArgument("webhook_url", f"must be {what} of at most 2048 characters")
    parts = urlsplit(check_text(value, "webhook_url"))
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidArgument("webhook_url", f"must be {what} with a host, got {value!r}")
    return value


def parse_preferences(body: Any, *, allow_http_webhooks: bool = False) -> PreferencesUpdate:
    """The update a ``PUT /preferences`` body asks for, checked as a whole.
    ``allow_http_webhooks`` (``NOTIFY_WEBHOOK_ALLOW_HTTP``) accepts ``http://`` webhook URLs."""
    body = _object(body, "body")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidArgument(unknown[0], "is not a known field")
    update: dict[str, Any] = {}
    if "channels" in body:
        update["channels"] = _switches(body["channels"], "channels")
    if "per_type" in body:
        per_type = _object(body["per_type"], "per_type")
        if len(per_type) > MAX_TYPES:
            raise InvalidArgument("per_type", f"at most {MAX_TYPES} types")
        for name in per_type:
            check_type(name, "per_type")
        update["per_type"] = {
            name: _switches(value, f"per_type.{name}") for name, value in per_type.items()
        }
    if "quiet_hours" in body:
        update["quiet_hours"] = _quiet_hours(body["quiet_hours"])
    if "digest" in body:
        update["digest"] = _digest(body["digest"])
    if "email" in body:
        update["email"] = _email(body["email"])
    if "phone" in body:
        update["phone"] = _phone(body["phone"])
    if "webhook_url" in body:
        update["webhook_url"] = _webhook_url(body["webhook_url"], allow_http_webhooks)
    return PreferencesUpdate(**update)
