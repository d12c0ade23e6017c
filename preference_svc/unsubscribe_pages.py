"""The two small HTML pages of one-click unsubscribe (Jinja2, autoescaped).

The confirmation page (GET) changes nothing: it only shows what the link would do and a
button that POSTs. The done page answers that POST in a browser.
"""

from __future__ import annotations

from typing import Final

from jinja2 import DictLoader, Environment, StrictUndefined
from starlette.responses import HTMLResponse

from notify_core.constants import UNSUBSCRIBE_ALL_CHANNELS
from preference_svc.unsubscribe import UnsubscribeClaim

_TEMPLATES: Final = {
    "layout.html": """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{% block title %}{% endblock %}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 34rem; margin: 4rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }
button { font: inherit; padding: .5rem 1.25rem; cursor: pointer; }
.note { color: #666; font-size: .9rem; }
</style>
</head>
<body><main>{% block main %}{% endblock %}</main></body>
</html>
""",
    "confirm.html": """{% extends "layout.html" %}
{% block title %}Unsubscribe{% endblock %}
{% block main %}
<h1>Unsubscribe</h1>
<p>Stop receiving <strong>{{ type }}</strong> notifications {{ channel_text }}?</p>
<form method="post" action="?token={{ token | urlencode }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>
<p class="note">Nothing changes until you press the button.</p>
{% endblock %}
""",
    "done.html": """{% extends "layout.html" %}
{% block title %}Unsubscribed{% endblock %}
{% block main %}
<h1>You are unsubscribed</h1>
<p>You will no longer receive <strong>{{ type }}</strong> notifications {{ channel_text }}.</p>
<p class="note">You can switch them back on in your notification preferences.</p>
{% endblock %}
""",
}

_env = Environment(loader=DictLoader(_TEMPLATES), autoescape=True, undefined=StrictUndefined)

PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
"""No caching and no Referer (the URL holds the token); no framing (no click-jacking)."""


def channel_text(channel: str) -> str:
    """How a page names the channel: "by email", "on any channel"."""
    if channel == UNSUBSCRIBE_ALL_CHANNELS:
        return "on any channel"
    return {"inapp": "in the app", "webpush": "by web push"}.get(channel, f"by {channel}")


def confirm_page(claim: UnsubscribeClaim, token: str) -> HTMLResponse:
    html = _env.get_template("confirm.html").render(
        type=claim.type, channel_text=channel_text(claim.channel), token=token
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


def done_page(claim: UnsubscribeClaim) -> HTMLResponse:
    html = _env.get_template("done.html").render(
        type=claim.type, channel_text=channel_text(claim.channel)
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)
