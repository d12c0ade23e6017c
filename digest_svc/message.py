"""The digest email: the built-in template, what a template sees, and the message (pure).

A digest renders the template ``digest`` (channel email) of the user's locale or its
fallbacks when one is published, else the built-in one below (English). A template sees:

- ``frequency`` ("daily" or "weekly"), ``period`` (``daily:2026-03-08``), ``total``
  (notifications), ``summary`` ("12 new comments on 3 posts and 2 new mentions");
- ``groups``: per type, largest first: ``type``, ``count``, ``subjects`` (distinct things),
  ``summary``, ``notifications`` (the newest few: ``title``, ``message``, ``count``,
  ``created_at`` in ISO 8601, ``data``) and ``more`` (how many are not listed);
- ``unsubscribe_url``: the one-click link that stops digests ('' without one);
- ``notification``: ``id`` (the digest's), ``type`` ("digest"), ``title``, ``message``
  (the summary), ``user_id``.

The Message-ID is ``<digest-id.digest@sender-domain>``, the digest id being the same for
every try of one user's period, so a receiver can drop a resend; the provider idempotency
key is that id too. The one-click ``List-Unsubscribe`` headers switch type ``digest`` off.
"""

from __future__ import annotations

from typing import Any

from delivery_svc.api import EmailMessage, message_id
from digest_svc.content import Digest
from notify_core.constants import DIGEST_TYPE
from preference_svc.api import list_unsubscribe_headers
from template_svc.api import Rendered, Source

_SUBJECT = (
    "Your {{ frequency }} digest: {{ total }} new notification{{ '' if total == 1 else 's' }}"
)
_BODY = """<!doctype html>
<html>
<head>
<style>
body { font-family: Helvetica, Arial, sans-serif; color: #1f2328; line-height: 1.4; }
h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 16px; margin: 20px 0 6px; }
ul { margin: 0; padding-left: 20px; }
li { margin: 2px 0; }
.count { color: #59636e; }
.more { color: #59636e; margin: 4px 0 0; }
.footer { color: #818b98; font-size: 12px; margin-top: 28px; }
</style>
</head>
<body>
<h1>Your {{ frequency }} digest</h1>
<p>{{ summary }}.</p>
{%- for group in groups %}
<h2>{{ group.summary }}</h2>
<ul>
{%- for item in group.notifications %}
<li>{{ item.title }}
{%- if item.count > 1 %} <span class="count">({{ item.count }})</span>{% endif %}</li>
{%- endfor %}
</ul>
{%- if group.more %}
<p class="more">and {{ group.more }} more</p>
{%- endif %}
{%- endfor %}
{%- if unsubscribe_url %}
<p class="footer">You get this digest because you asked for one.
<a href="{{ unsubscribe_url }}">Stop these digests</a></p>
{%- endif %}
</body>
</html>
"""

_TEXT = """Your {{ frequency }} digest

{{ summary }}.
{% for group in groups %}
{{ group.summary }}
{% for item in group.notifications -%}
- {{ item.title }}{% if item.count > 1 %} ({{ item.count }}){% endif %}
{% endfor -%}
{% if group.more %}  and {{ group.more }} more
{% endif -%}
{% endfor %}
{% if unsubscribe_url %}Stop these digests: {{ unsubscribe_url }}
{% endif %}"""

BUILT_IN = Source(
    channel="email",
    body=_BODY,
    subject=_SUBJECT,
    key=("*digest", "email", "", 1),  # '*' is no stored template's name: no clash
    text=_TEXT,
)
"""The template used where no ``digest`` template is published for the locale."""


def template_data(
    digest: Digest, frequency: str, period: str, unsubscribe_url: str | None
) -> dict[str, Any]:
    return {
        "frequency": frequency,
        "period": period,
        "total": digest.total,
        "summary": digest.summary,
        "groups": [
            {
                "type": g.type,
                "count": g.count,
                "subjects": g.subjects,
                "summary": g.summary,
                "notifications": [
                    {
                        "title": i.title,
                        "message": i.message,
                        "count": i.count,
                        "created_at": i.created_at.isoformat(),
                        "data": dict(i.data or {}),
                    }
                    for i in g.shown
                ],
                "more": g.more,
            }
            for g in digest.groups
        ],
        "unsubscribe_url": unsubscribe_url or "",
    }


def template_notification(
    digest_id: str, user_id: str, digest: Digest, frequency: str
) -> dict[str, Any]:
    return {
        "id": digest_id,
        "type": DIGEST_TYPE,
        "title": f"Your {frequency} digest",
        "message": digest.summary,
        "user_id": user_id,
    }


def digest_email(
    *,
    to: str,
    sender: str,
    rendered: Rendered,
    digest_id: str,
    fallback_subject: str,
    unsubscribe_url: str | None,
) -> EmailMessage:
    headers = list_unsubscribe_headers(unsubscribe_url) if unsubscribe_url else {}
    return EmailMessage(
        to=to,
        sender=sender,
        subject=rendered.subject or fallback_subject,
        html=rendered.html or rendered.body,
        text=rendered.text,
        message_id=message_id(digest_id, DIGEST_TYPE, sender),
        idempotency_key=digest_id,
        headers=headers,
    )
