"""Open and click tracking for HTML messages: signed pixel and redirect URLs (pure).

``/t/o/<token>.gif`` is a 1x1 pixel whose fetch counts an open of one delivery;
``/t/c/<token>`` counts a click and redirects to the link's target. Both tokens carry
their own proof: a :mod:`notify_core.signed` token signed with the signing secret
(``NOTIFY_SIGNING_SECRET``), so the edge redirects **only** to a URL this service signed:
the click route is not an open redirect, and changing one character of a token makes it
worthless. Its fields are the delivery id (and the target URL), its purpose
``track-open`` or ``track-click``, so that an open token is never a click token, nor an
unsubscribe token signed with the same secret. Tracking links do not expire: mail is
read, and its links followed, years later (links of the version 1 layout still count).

:func:`rewrite_links` puts every ``<a href="http(s)://…">`` of an HTML body behind its
click URL, leaving alone ``mailto:``, ``tel:``, ``#anchors``, relative links, links to
this service (``public_url``: unsubscribe, already tracked), any link whose URL mentions
``unsubscribe``, and any ``<a>`` carrying a ``data-notrack`` attribute.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit, urlunsplit

from notify_core.constants import (
    MAX_TRACKED_URL,
    MAX_TRACKING_TOKEN,
    TRACK_CLICK_PATH,
    TRACK_OPEN_PATH,
)
from notify_core.errors import InvalidArgument
from notify_core.signed import V1, malformed, sign, verify

MAX_DELIVERY_ID = 64
OPEN = "track-open"
CLICK = "track-click"

# What a browser does with these in a link is not what a URL parser does: not tracked.
_UNSAFE_IN_URL = re.compile(r"[\x00-\x1f\x7f\\]")
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
# The attribute syntax of html.parser's tolerant start-tag parsing, to find the href's span.
_TAG_NAME = re.compile(r"<[a-zA-Z][^\t\n\r\f />\x00]*(?:\s|/(?!>))*")
_ATTRIBUTE = re.compile(
    r"((?<=['\"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*('[^']*'|\"[^\"]*\"|(?!['\"])[^>\s]*))?(?:\s|/(?!>))*"
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ClickClaim:
    delivery_id: str
    url: str
    """The signed target: the redirect goes exactly here."""


def _check_delivery_id(delivery_id: str) -> None:
    if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID or not delivery_id.isprintable():
        raise InvalidArgument("delivery_id", f"must be 1 to {MAX_DELIVERY_ID} characters")


def normalise_target(url: str) -> str:
    """``url`` as a browser would request it (non-ASCII percent-encoded, IDN host in
    punycode); ``InvalidArgument("target_url", …)`` unless it is a plain http(s) URL."""
    url = url.strip()
    if _UNSAFE_IN_URL.search(url):
        raise InvalidArgument("target_url", "must not hold control characters or '\\'")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:
        raise InvalidArgument("target_url", f"is not a URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        raise InvalidArgument("target_url", "must be an absolute http:// or https:// URL")
    netloc = parts.netloc
    if not netloc.isascii():
        try:
            host = hostname.encode("idna").decode("ascii")
            port = parts.port
        except (UnicodeError, ValueError):
            raise InvalidArgument("target_url", f"has an invalid host {hostname!r}") from None
        userinfo, at, _ = netloc.rpartition("@")
        suffix = f":{port}" if port is not None else ""
        netloc = f"{quote(userinfo, safe=_URL_SAFE)}{at}{host}{suffix}"
    rest = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    normal = f"{parts.scheme.lower()}://{netloc}{quote(rest, safe=_URL_SAFE)}"
    if len(normal) > MAX_TRACKED_URL:
        raise InvalidArgument("target_url", f"must be at most {MAX_TRACKED_URL} characters")
    return normal


def open_token(secret: str, delivery_id: str) -> str:
    _check_delivery_id(delivery_id)
    return sign(secret, OPEN, (delivery_id,))


def click_token(secret: str, delivery_id: str, target_url: str) -> str:
    """The token for a click on ``target_url`` (normalised, see :func:`normalise_target`)."""
    _check_delivery_id(delivery_id)
    return sign(secret, CLICK, (delivery_id, normalise_target(target_url)))


def _base(public_url: str) -> str:
    return public_url.rstrip("/")


def open_pixel_url(secret: str, public_url: str, delivery_id: str) -> str:
    """``<public_url>/t/o/<token>.gif``."""
    return f"{_base(public_url)}{TRACK_OPEN_PATH}{open_token(secret, delivery_id)}.gif"


def click_url(secret: str, public_url: str, delivery_id: str, target_url: str) -> str:
    """``<public_url>/t/c/<token>``, redirecting to ``target_url`` (http or https only)."""
    return f"{_base(public_url)}{TRACK_CLICK_PATH}{click_token(secret, delivery_id, target_url)}"


def _read(secret: str, purpose: str, token: str, count: int) -> tuple[str, ...]:
    verified = verify(
        secret, purpose, token, count=count, now=None, max_chars=MAX_TRACKING_TOKEN, v1=V1.LASTING
    )
    return verified.fields


def read_open_token(secret: str, token: str) -> str:
    """The delivery id of a valid open token; ``InvalidArgument("token", …)`` otherwise."""
    (delivery_id,) = _read(secret, OPEN, token, 1)
    return delivery_id


def read_click_token(secret: str, token: str) -> ClickClaim:
    """Delivery id and target of a valid click token; ``InvalidArgument("token", …)``."""
    delivery_id, url = _read(secret, CLICK, token, 2)
    if urlsplit(url).scheme not in ("http", "https"):
        raise malformed("the target is not http(s)")
    return ClickClaim(delivery_id, url)


class _Anchors(HTMLParser):
    """Where each ``<a>`` start tag is, its raw text and its parsed href."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[tuple[int, int], str, str | None, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        names = [name for name, _ in attrs]
        href = next((value for name, value in attrs if name == "href"), None)
        self.found.append(
            (self.getpos(), self.get_starttag_text() or "", href, "data-notrack" in names)
        )


def _href_span(tag: str) -> tuple[int, int] | None:
    """The span of the first href attribute's value in a raw start tag, quotes included."""
    start = _TAG_NAME.match(tag)
    if start is None:
        return None
    at = start.end()
    while at < len(tag):
        m = _ATTRIBUTE.match(tag, at)
        if m is None:
            return None
        if m.group(1).lower() == "href":
            return m.span(3) if m.group(3) is not None else None
        at = m.end()
    return None


def _trackable(url: str, public_url: str) -> bool:
    lowered = url.lower()
    if not lowered.startswith(("http://", "https://")) or "unsubscribe" in lowered:
        return False
    return not lowered.startswith(_base(public_url).lower() + "/")


def rewrite_links(secret: str, body: str, public_url: str, delivery_id: str) -> str:
    """``body`` with every trackable ``<a href>`` pointing at its click URL."""
    parser = _Anchors()
    parser.feed(body)
    parser.close()
    line_starts = [0]
    for text in body.split("\n"):
        line_starts.append(line_starts[-1] + len(text) + 1)
    out: list[str] = []
    done = 0
    for (lineno, column), raw_tag, href, notrack in parser.found:
        at = line_starts[lineno - 1] + column
        span = _href_span(raw_tag)
        if notrack or href is None or span is None or body[at : at + len(raw_tag)] != raw_tag:
            continue
        raw_value = raw_tag[span[0] : span[1]]
        if raw_value[:1] in ("'", '"'):
            raw_value = raw_value[1:-1]
        if html.unescape(raw_value) != href:
            continue  # not the value the parser saw: leave it alone
        target = href.strip()
        if not _trackable(target, public_url):
            continue
        try:
            tracked = click_url(secret, public_url, delivery_id, target)
        except InvalidArgument:
            continue
        out.append(body[done : at + span[0]])
        out.append(f'"{html.escape(tracked, quote=True)}"')
        done = at + span[1]
    out.append(body[done:])
    return "".join(out)


def pixel_tag(secret: str, public_url: str, delivery_id: str) -> str:
    """The invisible ``<img>`` whose fetch records an open."""
    src = html.escape(open_pixel_url(secret, public_url, delivery_id), quote=True)
    return (
        f'<img src="{src}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0" />'
    )


def append_pixel(secret: str, body: str, public_url: str, delivery_id: str) -> str:
    """``body`` with the pixel just before its last ``</body>`` (or at the end)."""
    tag = pixel_tag(secret, public_url, delivery_id)
    ends = list(_BODY_END.finditer(body))
    if not ends:
        return body + tag
    at = ends[-1].start()
    return body[:at] + tag + body[at:]


def track_html(secret: str, body: str, public_url: str, delivery_id: str) -> str:
    """Links rewritten and the pixel added: what the email worker sends."""
    return append_pixel(
        secret, rewrite_links(secret, body, public_url, delivery_id), public_url, delivery_id
    )
