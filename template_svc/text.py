"""The plain-text part of an email, made from its HTML (pure, standard library only).

Email HTML is simple (paragraphs, headings, links, lists, tables used for layout), so a
small converter over :class:`html.parser.HTMLParser` is enough:

- ``head``, ``style``, ``script``, ``template`` and ``title`` are dropped with their content;
- block elements (``p``, ``div``, headings, tables, lists…) start on a new line, and
  paragraphs and headings are set apart by a blank line;
- ``br`` breaks the line, ``hr`` draws a rule, ``li`` gets a bullet (``1.`` in ``ol``);
- a link keeps its text followed by its address, ``text (https://…)``, unless the text is
  the address already; ``mailto:`` and in-page (``#…``) addresses are left out;
- an image shows its ``alt`` text; table cells on one row are separated by spaces;
- runs of whitespace collapse to one space, except inside ``pre``; nested list items
  are indented.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = frozenset({"head", "style", "script", "template", "title", "noscript"})
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table"})
_BLOCK = frozenset(
    {
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "nav",
        "aside",
        "ul",
        "ol",
        "tr",
        "dl",
        "dt",
        "dd",
        "figure",
        "figcaption",
        "address",
        "center",
        "tbody",
        "thead",
        "tfoot",
    }
)
_SPACE = re.compile(r"\s+")
_BREAK = "\x00"
"""A line break, in the buffer until the end (spaces around it are then dropped)."""
_PARA = "\x02"
"""A blank line; runs of breaks collapse to one blank line if any of them is one."""
_BREAKS = re.compile("[ \x00\x02]*[\x00\x02][ \x00\x02]*")
_HARD_SPACE = "\x01"
"""A space that is kept at the start of a line (list indentation, ``pre`` text)."""


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0
        self._lists: list[list[int]] = []  # per open list: [counter] (-1 = bullets)
        self._links: list[tuple[str | None, int]] = []  # href, parts index at <a>

    def _newline(self, blank: bool = False) -> None:
        self.parts.append(_PARA if blank else _BREAK)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
            return
        if self._skip:
            return
        attr = dict(attrs)
        if tag in _PARAGRAPH:
            self._newline(blank=True)
            if tag == "pre":
                self._pre += 1
        elif tag in _BLOCK:
            self._newline()
            if tag in ("ul", "ol"):
                self._lists.append([0 if tag == "ol" else -1])
        elif tag == "li":
            self._newline()
            depth = max(len(self._lists) - 1, 0)
            counter = self._lists[-1] if self._lists else [-1]
            if counter[0] >= 0:
                counter[0] += 1
                self.parts.append(_HARD_SPACE * 2 * depth + f"{counter[0]}. ")
            else:
                self.parts.append(_HARD_SPACE * 2 * depth + "- ")
        elif tag == "br":
            self._newline()
        elif tag == "hr":
            self._newline()
            self.parts.append("-" * 40)
            self._newline()
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "img" and attr.get("alt"):
            self.parts.append(str(attr["alt"]))
        elif tag == "a":
            self._links.append((attr.get("href"), len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(self._skip - 1, 0)
            return
        if self._skip:
            return
        if tag in _PARAGRAPH:
            if tag == "pre":
                self._pre = max(self._pre - 1, 0)
            self._newline(blank=True)
        elif tag in _BLOCK:
            if tag in ("ul", "ol") and self._lists:
                self._lists.pop()
            self._newline()
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            text = "".join(self.parts[start:])
            text = _SPACE.sub(" ", re.sub("[\x00-\x02]", " ", text)).strip()
            if href and not href.startswith(("mailto:", "#", "javascript:")) and href != text:
                self.parts.append(f" ({href})" if text else href)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre:
            self.parts.append(data.replace(" ", _HARD_SPACE).replace("\n", _BREAK))
        else:
            self.parts.append(_SPACE.sub(" ", data))


def html_to_text(html: str) -> str:
    """The readable text of ``html``: one paragraph per block, links with their address."""
    converter = _Converter()
    converter.feed(html)
    converter.close()
    text = _BREAKS.sub(lambda m: "\n\n" if _PARA in m.group() else "\n", "".join(converter.parts))
    return text.strip().replace(_HARD_SPACE, " ") + "\n"
