"""TemplateService's REST routes on the edge; every one needs a producer key.

::

    PUT    /templates/{name}/{channel}            {locale?, subject?, body, layout?, variables?}
                                                  → 201, the new version
    GET    /templates/{name}/{channel}?locale=&version=&fallback=
                                                  → the latest version, or the one asked for
    GET    /templates/{name}/{channel}/versions?locale=
                                                  → {"versions": [...]}, oldest first
    DELETE /templates/{name}/{channel}?locale=    → {"deactivated": N}; 404 when none
    POST   /templates/render                      preview, nothing sent:
           {name, channel, locale?, version?, data?, notification?}           a stored one
           {channel, locale?, template: {subject?, body, layout?, variables?},
            data?, notification?}                                             an unsaved one
                                                  → {subject, html, text, body, template}

``channel`` is one of inapp, email, sms, push, webpush, webhook, or ``layout``. A template
is JSON as ``{name, channel, locale, version, subject, body, layout, variables,
created_at}``; ``locale`` ``""`` is the default. ``subject`` is an email's subject
(required) or a push's title; an SMS has none. Push and SMS parts are bounded
(:data:`template_svc.validate.PART_LIMITS`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from notify_core.constants import MAX_INTEGER_COLUMN
from notify_core.errors import InvalidArgument
from notify_core.http import JSONResponse, json_body
from notify_core.routes import PRODUCER, HttpRoute
from template_svc.render import Rendered
from template_svc.templates import Templates
from template_svc.validate import (
    check_channel,
    check_data,
    check_locale,
    check_name,
    check_notification,
    parse_inline,
    parse_template,
)

RENDER_FIELDS = frozenset(
    {"name", "channel", "locale", "version", "template", "data", "notification"}
)


def _version(value: Any, field: str = "version") -> int | None:
    """A version from a query parameter or a body: a whole number of 1 or more, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise InvalidArgument(field, f"must be a whole number, got {value!r}") from None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_INTEGER_COLUMN
    ):
        raise InvalidArgument(
            field, f"must be a whole number from 1 to {MAX_INTEGER_COLUMN}, got {value!r}"
        )
    return value


def _flag(value: str | None, field: str) -> bool:
    if value in (None, "", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise InvalidArgument(field, f"must be true or false, got {value!r}")


def _rendered(r: Rendered, template: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "subject": r.subject,
        "html": r.html,
        "text": r.text,
        "body": r.body,
        "template": template,
    }


def routes(templates: Templates) -> list[HttpRoute]:
    """The routes above, on ``templates``."""

    def key(request: Request) -> tuple[str, str, str]:
        return (
            check_name(request.path_params["name"]),
            check_channel(request.path_params["channel"]),
            check_locale(request.query_params.get("locale")),
        )

    async def publish(request: Request) -> Response:
        name, channel = request.path_params["name"], request.path_params["channel"]
        template = parse_template(await json_body(request), name, channel)
        stored = await templates.publish(template)
        return JSONResponse(stored.to_json(), status_code=201)

    async def get(request: Request) -> Response:
        name, channel, locale = key(request)
        version = _version(request.query_params.get("version"))
        fallback = _flag(request.query_params.get("fallback"), "fallback")
        stored = await templates.get(name, channel, locale, version, fallback)
        return JSONResponse(stored.to_json())

    async def versions(request: Request) -> Response:
        found = await templates.store.versions(*key(request))
        return JSONResponse({"versions": [t.to_json() for t in found]})

    async def delete(request: Request) -> Response:
        return JSONResponse({"deactivated": await templates.store.delete(*key(request))})

    async def render(request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise InvalidArgument("body", "must be an object")
        unknown = sorted(set(body) - RENDER_FIELDS)
        if unknown:
            raise InvalidArgument(unknown[0], "is not a known field")
        data = check_data(body.get("data"))
        notification = check_notification(body.get("notification"))
        if "template" in body:
            if body.get("name") is not None or body.get("version") is not None:
                raise InvalidArgument(
                    "template", "give either a stored template's name or template"
                )
            inline = parse_inline(body["template"], body.get("channel"), body.get("locale"))
            rendered = await templates.preview_inline(inline, data, notification)
            return JSONResponse(_rendered(rendered, None))
        name, channel = check_name(body.get("name")), check_channel(body.get("channel"))
        locale = check_locale(body.get("locale"))
        rendered, stored = await templates.preview(
            name, channel, locale, _version(body.get("version")), data, notification
        )
        return JSONResponse(_rendered(rendered, stored.to_json()))

    return [
        HttpRoute("POST", "/templates/render", PRODUCER, render),
        HttpRoute("PUT", "/templates/{name}/{channel}", PRODUCER, publish),
        HttpRoute("GET", "/templates/{name}/{channel}", PRODUCER, get),
        HttpRoute("DELETE", "/templates/{name}/{channel}", PRODUCER, delete),
        HttpRoute("GET", "/templates/{name}/{channel}/versions", PRODUCER, versions),
    ]
