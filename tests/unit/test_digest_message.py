"""The built-in digest email: subject, escaped HTML with inlined CSS, its own text part,
the unsubscribe link, the stable Message-ID (pure: rendered without a database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest_svc.content import Item, build
from digest_svc.message import BUILT_IN, digest_email, template_data, template_notification
from template_svc.render import Renderer

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
LINK = "https://notify.example.com/unsubscribe?token=abc"


def items() -> list[Item]:
    out = []
    for i in range(8):
        out.append(
            Item(
                delivery_id=f"d{i}",
                notification_id=f"n{i}",
                type="comment" if i < 7 else "mention",
                title=f"<i>Ann</i> commented {i}" if i == 0 else f"comment {i}",
                message="m",
                group_key=f"post:{i % 2}" if i < 7 else None,
                count=3 if i == 1 else 1,
                locale=None,
                created_at=T0 - timedelta(minutes=i),
            )
        )
    return out


def render(link: str | None = LINK) -> tuple[str | None, str, str]:
    digest = build(items())
    out = Renderer().render(
        BUILT_IN,
        template_data(digest, "weekly", "weekly:2026-W18", link),
        template_notification("id-1", "u1", digest, "weekly"),
        lambda name: None,
    )
    assert out.html is not None
    return out.subject, out.html, out.text


def test_subject_counts_every_notification() -> None:
    subject, _, _ = render()
    assert subject == "Your weekly digest: 10 new notifications"


def test_html_lists_the_groups_escaped_with_inlined_css() -> None:
    _, html, _ = render()
    assert "9 new comments on 2 posts and 1 new mention." in html
    assert "&lt;i&gt;Ann&lt;/i&gt; commented 0" in html and "<i>Ann</i>" not in html
    assert 'style="color: #59636e;">(3)</span>' in html
    assert "and 2 more" in html  # 7 comments, 5 listed
    assert f'<a href="{LINK}"' in html
    assert "<style>" not in html  # inlined


def test_the_text_part_is_its_own_not_converted_html() -> None:
    _, _, text = render()
    assert text.splitlines()[:3] == [
        "Your weekly digest",
        "",
        "9 new comments on 2 posts and 1 new mention.",
    ]
    assert "- <i>Ann</i> commented 0" in text  # plain text: nothing to escape
    assert "- comment 1 (3)" in text
    assert "  and 2 more" in text
    assert text.rstrip().endswith(f"Stop these digests: {LINK}")


def test_without_a_link_there_is_no_footer() -> None:
    _, html, text = render(None)
    assert "Stop these digests" not in html and "Stop these digests" not in text


def test_the_message_id_is_the_digests_and_the_headers_unsubscribe_it() -> None:
    digest = build(items())
    rendered = Renderer().render(
        BUILT_IN,
        template_data(digest, "daily", "daily:2026-05-01", LINK),
        template_notification("id-1", "u1", digest, "daily"),
        lambda name: None,
    )
    message = digest_email(
        to="u1@example.com",
        sender="Notify <no-reply@notify.example.com>",
        rendered=rendered,
        digest_id="6f1c2a4e-0000-4c55-9a7e-3b2d1f0e9c18",
        fallback_subject="Your daily digest",
        unsubscribe_url=LINK,
    )
    assert message.message_id == "<6f1c2a4e-0000-4c55-9a7e-3b2d1f0e9c18.digest@notify.example.com>"
    assert message.idempotency_key == "6f1c2a4e-0000-4c55-9a7e-3b2d1f0e9c18"
    assert message.headers == {
        "List-Unsubscribe": f"<{LINK}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
