"""Checking template input (pure): names, channels, locales, variables, the parts' shape.

Every error is an :class:`InvalidArgument` naming the field, the same for a REST body and a
gRPC request. What Jinja decides (syntax, undeclared variables) is checked by
:meth:`template_svc.render.Renderer.check`.

Locales are BCP 47 tags, stored in one form: ``fr_ca`` and ``FR-ca`` are ``fr-CA``
(language in lower case, a region in upper case, a script capitalised); ``''`` is the
default. A lookup tries the tag, then each shorter prefix, then the default:
``zh-Hant-TW`` → ``zh-Hant`` → ``zh`` → ``''``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notify_core.constants import (
    MAX_DATA_BYTES,
    MAX_LOCALE,
    MAX_PUSH_BODY_TEMPLATE,
    MAX_PUSH_TITLE_TEMPLATE,
    MAX_SMS_BODY_TEMPLATE,
    MAX_TEMPLATE,
    MAX_TEMPLATE_BODY,
    MAX_TEMPLATE_SUBJECT,
    MAX_TEMPLATE_VARIABLE,
    MAX_TEMPLATE_VARIABLES,
    TEMPLATE_CHANNELS,
    TEMPLATE_LAYOUT,
)
from notify_core.errors import InvalidArgument
from notify_core.storable import check_text
from template_svc.context import NOTIFICATION_FIELDS
from template_svc.render import Source

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEMPLATE_FIELDS = frozenset({"locale", "subject", "body", "layout", "variables"})
INLINE_FIELDS = frozenset({"subject", "body", "layout", "variables"})
PART_LIMITS: Mapping[tuple[str, str], tuple[int, str]] = {
    ("push", "subject"): (MAX_PUSH_TITLE_TEMPLATE, "a push title"),
    ("push", "body"): (MAX_PUSH_BODY_TEMPLATE, "a push body"),
    ("sms", "body"): (MAX_SMS_BODY_TEMPLATE, "an SMS body"),
}
"""Channels whose parts are bounded below ``MAX_TEMPLATE_SUBJECT`` and ``MAX_TEMPLATE_BODY``
(characters of the template's source, checked at publish): what the provider carries."""


@dataclass(frozen=True, slots=True)
class TemplateInput:
    """A checked template to publish (or to preview unsaved)."""

    name: str
    channel: str
    locale: str
    body: str
    subject: str | None = None
    layout: str | None = None
    variables: tuple[str, ...] | None = None

    def source(self) -> Source:
        return Source(self.channel, self.body, self.subject, self.layout, self.variables)


def check_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(field, "is required")
    if len(value) > MAX_TEMPLATE or not NAME.match(value):
        raise InvalidArgument(
            field,
            f"must be 1 to {MAX_TEMPLATE} letters, digits and _ . : - "
            f"(starting with a letter or digit), got {value!r}",
        )
    return value


def check_channel(value: Any, field: str = "channel") -> str:
    if value not in TEMPLATE_CHANNELS:
        raise InvalidArgument(
            field, f"must be one of {', '.join(TEMPLATE_CHANNELS)}, got {value!r}"
        )
    return str(value)


def _canonical(tag: str) -> str:
    first, *rest = re.split("[-_]", tag)
    parts = [first.lower()]
    for sub in rest:
        if len(sub) == 2 and sub.isalpha():
            parts.append(sub.upper())
        elif len(sub) == 4 and sub.isalpha():
            parts.append(sub.capitalize())
        else:
            parts.append(sub.lower())
    return "-".join(parts)


def check_locale(value: Any, field: str = "locale") -> str:
    """A locale in its stored form; None and '' are the default ('')."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > MAX_LOCALE or not LOCALE.match(value):
        raise InvalidArgument(
            field, f"must be a BCP 47 language tag such as fr or fr-CA, got {value!r}"
        )
    return _canonical(value)


def locale_chain(locale: str | None) -> list[str]:
    """The locales a lookup tries, best first, ending with the default ('').

    Lenient: a notification's locale is free text, and one that is not a language tag
    gets the default."""
    if not locale or len(locale) > MAX_LOCALE or not LOCALE.match(locale):
        return [""]
    parts = _canonical(locale).split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)] + [""]


def _text(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    if len(value) > limit:
        raise InvalidArgument(field, f"must be at most {limit} characters, got {len(value)}")
    return check_text(value, field)


def check_variables(value: Any, field: str = "variables") -> tuple[str, ...] | None:
    """Declared variable names (None: not declared, nothing checked at save)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise InvalidArgument(field, "must be a list of variable names")
    if len(value) > MAX_TEMPLATE_VARIABLES:
        raise InvalidArgument(field, f"must hold at most {MAX_TEMPLATE_VARIABLES} names")
    seen: set[str] = set()
    for i, name in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(name, str) or len(name) > MAX_TEMPLATE_VARIABLE:
            raise InvalidArgument(
                where, f"must be a name of 1 to {MAX_TEMPLATE_VARIABLE} characters"
            )
        if not VARIABLE.match(name):
            raise InvalidArgument(
                where, f"must be a name made of letters, digits and _, got {name!r}"
            )
        if name == "notification":
            raise InvalidArgument(where, "'notification' is always there; do not declare it")
        if name in seen:
            raise InvalidArgument(where, f"{name!r} is declared twice")
        seen.add(name)
    return tuple(value)


def _check_part_limits(channel: str, parts: Mapping[str, str | None], prefix: str) -> None:
    """Refuse a part longer than its channel allows (:data:`PART_LIMITS`)."""
    for part, text in parts.items():
        limit = PART_LIMITS.get((channel, part))
        if limit is not None and text is not None and len(text) > limit[0]:
            raise InvalidArgument(
                prefix + part,
                f"must be at most {limit[0]} characters for {limit[1]}, got {len(text)}",
            )


def make_template(
    name: str,
    channel: str,
    locale: str,
    body: Any,
    subject: Any = None,
    layout: Any = None,
    variables: Any = None,
    prefix: str = "",
) -> TemplateInput:
    """A template from its parts (``name``, ``channel`` and ``locale`` already checked);
    ``prefix`` goes before the field names of the parts (``template.`` in a preview)."""
    body_text = _text(body, prefix + "body", MAX_TEMPLATE_BODY)
    if body_text is None or not body_text.strip():
        raise InvalidArgument(prefix + "body", "is required")
    subject_text = _text(subject, prefix + "subject", MAX_TEMPLATE_SUBJECT) or None
    if channel == "email" and (subject_text is None or not subject_text.strip()):
        raise InvalidArgument(prefix + "subject", "is required for email templates")
    if channel == TEMPLATE_LAYOUT and subject_text is not None:
        raise InvalidArgument(prefix + "subject", "a layout has no subject")
    if channel == "sms" and subject_text is not None:
        raise InvalidArgument(prefix + "subject", "an SMS has no subject, only a body")
    _check_part_limits(channel, {"subject": subject_text, "body": body_text}, prefix)
    layout_name = None
    if layout is not None and layout != "":
        layout_name = check_name(layout, prefix + "layout")
        if channel != "email":
            raise InvalidArgument(prefix + "layout", "only email templates take a layout")
    return TemplateInput(
        name,
        channel,
        locale,
        body_text,
        subject_text,
        layout_name,
        check_variables(variables, prefix + "variables"),
    )


def _object(body: Any, field: str, known: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise InvalidArgument(field, "must be an object")
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidArgument(
            f"{field}.{unknown[0]}" if field != "body" else unknown[0], "is not a known field"
        )
    return body


def parse_template(body: Any, name: Any, channel: Any) -> TemplateInput:
    """The template a ``PUT /templates/{name}/{channel}`` body publishes."""
    fields = _object(body, "body", TEMPLATE_FIELDS)
    return make_template(
        check_name(name),
        check_channel(channel),
        check_locale(fields.get("locale")),
        fields.get("body"),
        fields.get("subject"),
        fields.get("layout"),
        fields.get("variables"),
    )


def parse_inline(body: Any, channel: Any, locale: Any) -> TemplateInput:
    """The unsaved template of a preview (``template`` of ``POST /templates/render``)."""
    fields = _object(body, "template", INLINE_FIELDS)
    return make_template(
        "",
        check_channel(channel),
        check_locale(locale),
        fields.get("body"),
        fields.get("subject"),
        fields.get("layout"),
        fields.get("variables"),
        prefix="template.",
    )


def check_data(value: Any, field: str = "data") -> dict[str, Any]:
    """Render data: an object of at most ``MAX_DATA_BYTES`` as JSON."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(field, "must be an object")
    if len(json.dumps(value, separators=(",", ":"))) > MAX_DATA_BYTES:
        raise InvalidArgument(field, f"must be at most {MAX_DATA_BYTES} bytes as JSON")
    return value


def check_notification(value: Any, field: str = "notification") -> dict[str, str] | None:
    """A sample notification for a preview: some of id, type, title, message, user_id."""
    if value is None:
        return None
    fields = _object(value, field, frozenset(NOTIFICATION_FIELDS))
    for key, text in fields.items():
        if not isinstance(text, str):
            raise InvalidArgument(f"{field}.{key}", "must be a string")
    return dict(fields)
