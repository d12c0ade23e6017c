"""Rendering templates: sandbox, strict variables, escaping, layouts, CSS, text part, cache."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from notify_core.errors import InvalidArgument
from template_svc.render import LayoutLoader, Renderer, Source

LAYOUT = Source(
    "layout",
    "<html><head><style>p { color: #123456 } .big { font-size: 20px }</style></head>\n"
    "<body><h1>{{ notification.title }}</h1>\n"
    "<script>track()</script>\n"
    "{% block content %}{% endblock %}\n"
    "<footer>Sent by Acme</footer></body></html>",
    key=("base", "layout", "", 1),
)
NOTIFICATION = {"id": "n1", "type": "order", "title": "Your order", "message": "m", "user_id": "u"}


def layouts(*sources: tuple[str, Source]) -> LayoutLoader:
    return dict(sources).get


def no_layouts(name: str) -> None:
    return None


def email(body: str, subject: str = "Hi {{ name }}", **kw: Any) -> Source:
    return Source("email", body, subject, **kw)


def failure(call: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        call()
    return info.value


# --- strict variables -------------------------------------------------------------------


def test_missing_variable_at_render_names_it_with_its_line() -> None:
    r = Renderer()
    error = failure(lambda: r.render(Source("sms", "Hello\n{{ name }}"), {}, None, no_layouts))
    assert error.field == "data.name"
    assert "line 2" in error.message and "body" in error.message


def test_missing_nested_key_is_named_in_full() -> None:
    r = Renderer()
    source = Source("sms", "{% for i in order.lines %}{{ i.price }}{% endfor %}")
    data = {"order": {"lines": [{"price": 1}, {"sku": "x"}]}}
    error = failure(lambda: r.render(source, data, None, no_layouts))
    assert error.field == "data.order.lines[1].price"


def test_missing_variable_in_subject_names_the_subject() -> None:
    r = Renderer()
    error = failure(lambda: r.render(email("<p>x</p>"), {}, None, no_layouts))
    assert error.field == "data.name"
    assert "subject, line 1" in error.message


def test_none_renders_empty_and_defined_test_works() -> None:
    r = Renderer()
    source = Source("sms", "[{{ a }}]{% if b is defined %}{{ b }}{% else %}-{% endif %}")
    assert r.render(source, {"a": None}, None, no_layouts).body == "[]-"


def test_declared_variables_refuse_an_undeclared_one_at_save() -> None:
    r = Renderer()
    source = email("<p>{{ name }}</p>\n{% if vip %}<p>{{ discount }}</p>{% endif %}")
    error = failure(
        lambda: r.check(Source(**{**_fields(source), "variables": ("name", "vip")}), no_layouts)
    )
    assert error.field == "body"
    assert "'discount'" in error.message and "line 2" in error.message
    # declared: it passes, including attribute access, loops and filters on placeholders
    ok = Source(
        **{
            **_fields(source),
            "body": "{% for i in items %}{{ i.name|upper }}{% endfor %}{{ discount + 1 }}",
            "variables": ("name", "vip", "discount", "items"),
        }
    )
    r.check(ok, no_layouts)


def test_undeclared_variable_in_the_layout_is_refused_at_save() -> None:
    r = Renderer()
    layout = Source(
        "layout", "{% block content %}{% endblock %}{{ footer }}", key=("l", "layout", "", 1)
    )
    source = email("<p>{{ name }}</p>", layout="l", variables=("name",))
    error = failure(lambda: r.check(source, layouts(("l", layout))))
    assert error.field == "layout"
    assert "'footer'" in error.message


def test_without_declared_variables_any_variable_is_accepted_at_save() -> None:
    Renderer().check(email("<p>{{ anything.at.all }}</p>"), no_layouts)


def test_notification_fields_only() -> None:
    r = Renderer()
    ok = Source("push", "{{ notification.title }} by {{ notification.user_id }}")
    assert r.render(ok, {}, NOTIFICATION, no_layouts).body == "Your order by u"
    bad = Source("push", "{{ notification.secret }}", variables=())
    assert failure(lambda: r.check(bad, no_layouts)).field == "notification.secret"


# --- syntax and sandbox -----------------------------------------------------------------


def test_syntax_error_names_the_part_and_line() -> None:
    r = Renderer()
    error = failure(lambda: r.check(email("<p>\n\n{% if x %}</p>"), no_layouts))
    assert error.field == "body"
    assert error.message.startswith("body: line 3: Unexpected end of template")
    error = failure(lambda: r.check(email("<p>\n{{ x + }}</p>"), no_layouts))
    assert error.message.startswith("body: line 2: unexpected")
    error = failure(lambda: r.check(email("<p>x</p>", subject="Hi {{ name"), no_layouts))
    assert error.field == "subject" and "line 1" in error.message


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ name.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ items.append(1) }}",
        "{{ 'x' * 10000000 }}",
        "{{ 10 ** 10000000 }}",
    ],
)
def test_sandbox_refuses_unsafe_access(body: str) -> None:
    r = Renderer()
    data = {"name": "n", "items": []}
    error = failure(lambda: r.render(Source("sms", body), data, None, no_layouts))
    assert error.field == "body"
    assert "unsafe" in error.message or "more than" in error.message or "too large" in error.message


def test_sandbox_refuses_unsafe_access_at_save_with_declared_variables() -> None:
    source = Source("sms", "{{ name.__class__ }}", variables=("name",))
    error = failure(lambda: Renderer().check(source, no_layouts))
    assert error.field == "body" and "unsafe" in error.message


def test_templates_may_not_include_other_templates() -> None:
    error = failure(lambda: Renderer().check(Source("sms", "a\n{% include 'x' %}"), no_layouts))
    assert error.field == "body" and "line 2" in error.message


def test_a_runtime_error_names_the_part_and_line() -> None:
    error = failure(
        lambda: Renderer().render(Source("sms", "\n{{ 1 / n }}"), {"n": 0}, None, no_layouts)
    )
    assert error.field == "body" and "line 2" in error.message and "division" in error.message


# --- email: escaping, layout, CSS, text -------------------------------------------------


def test_script_in_data_is_escaped_in_html_but_layout_markup_is_not() -> None:
    r = Renderer()
    source = email('<p class="big">{{ name }}</p>', layout="base")
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    out = r.render(
        source, {"name": evil}, {**NOTIFICATION, "title": "<b>T</b>"}, layouts(("base", LAYOUT))
    )
    assert out.html is not None
    assert "<script>alert(1)" not in out.html and "<img src=x" not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert "&lt;b&gt;T&lt;/b&gt;" in out.html  # the notification's title too
    assert "<script>track()</script>" in out.html  # the layout's own markup is kept
    assert "<footer>Sent by Acme</footer>" in out.html
    assert out.subject == f"Hi {evil}"  # a subject is text: not HTML-escaped


def test_css_is_inlined_into_style_attributes() -> None:
    out = Renderer().render(
        email('<p class="big">Hello</p>', layout="base"),
        {"name": "A"},
        NOTIFICATION,
        layouts(("base", LAYOUT)),
    )
    assert out.html is not None
    assert "<style>" not in out.html
    assert 'style="color: #123456;font-size: 20px;"' in out.html.replace("; ", ";")


def test_text_part_is_generated_from_the_html() -> None:
    source = email(
        '<p>Hello <b>{{ name }}</b>,</p><p>See <a href="https://x.test/o/1">your order</a>.</p>'
        "<ul><li>one</li><li>two</li></ul>",
        layout="base",
    )
    out = Renderer().render(source, {"name": "<Ann>"}, NOTIFICATION, layouts(("base", LAYOUT)))
    assert out.text == (
        "Your order\n\nHello <Ann>,\n\nSee your order (https://x.test/o/1).\n\n- one\n- two\n"
        "Sent by Acme\n"
    )
    assert "track()" not in out.text
    assert out.body == out.html


def test_layout_blocks_are_overridden_and_missing_layout_is_an_error() -> None:
    r = Renderer()
    layout = Source(
        "layout",
        "<title>{% block title %}Acme{% endblock %}</title>{% block content %}{% endblock %}",
    )
    source = email("{% block title %}Order{% endblock %}<p>x</p>", layout="l")
    out = r.render(source, {"name": "a"}, None, layouts(("l", layout)))
    assert out.html is not None and "<title>Order</title>" in out.html
    error = failure(lambda: r.render(source, {"name": "a"}, None, no_layouts))
    assert error.field == "layout" and "'l'" in error.message


def test_missing_variable_in_layout_names_the_layout() -> None:
    source = email("<p>x</p>", layout="base")
    error = failure(
        lambda: Renderer().render(source, {"name": "a"}, None, layouts(("base", LAYOUT)))
    )
    assert error.field == "notification"
    assert "layout 'base', line 2" in error.message


def test_a_layout_needs_a_content_block() -> None:
    error = failure(lambda: Renderer().check(Source("layout", "<html></html>"), no_layouts))
    assert error.field == "body" and "content" in error.message


def test_subject_line_breaks_are_collapsed() -> None:
    out = Renderer().render(
        email("<p>x</p>", subject="Hi\n{{ name }}"), {"name": "a\r\nBcc: x@y"}, None, no_layouts
    )
    assert out.subject == "Hi a Bcc: x@y"


def test_text_channels_are_not_escaped() -> None:
    out = Renderer().render(
        Source("sms", "{{ a }} & {{ b }}", "T {{ a }}"), {"a": "<x>", "b": "'"}, None, no_layouts
    )
    assert out.body == out.text == "<x> & '"
    assert out.subject == "T <x>" and out.html is None


# --- cache ------------------------------------------------------------------------------


def test_compiled_templates_are_cached_per_version_and_bounded() -> None:
    r = Renderer(cache_size=3)
    v1 = Source("sms", "one {{ n }}", key=("t", "sms", "", 1))
    for _ in range(3):
        assert r.render(v1, {"n": 1}, None, no_layouts).body == "one 1"
    assert (r.misses, r.hits) == (1, 2)
    v2 = Source("sms", "two {{ n }}", key=("t", "sms", "", 2))
    assert r.render(v2, {"n": 1}, None, no_layouts).body == "two 1"
    assert r.misses == 2
    for i in range(3, 6):  # fill the cache past its size: v1 is the oldest, dropped
        r.render(Source("sms", "x", key=("t", "sms", "", i)), {}, None, no_layouts)
    misses = r.misses
    r.render(v1, {"n": 1}, None, no_layouts)
    assert r.misses == misses + 1
    unsaved = Source("sms", "x")
    r.render(unsaved, {}, None, no_layouts)
    assert r.misses == misses + 1  # unsaved templates are never cached


def _fields(source: Source) -> dict[str, Any]:
    return {
        "channel": source.channel,
        "body": source.body,
        "subject": source.subject,
        "layout": source.layout,
        "variables": source.variables,
        "key": source.key,
    }


# --- the budget -------------------------------------------------------------------------

HUGE_LOOP = "Hi\n{% for i in range(1500) %}{% for j in range(1500) %}{% endfor %}{% endfor %}"
"""2.25 M loop iterations and no output."""


def test_a_huge_loop_is_refused_by_the_step_budget() -> None:
    error = failure(lambda: Renderer().render(Source("sms", HUGE_LOOP), {}, None, no_layouts))
    assert error.field == "body"
    assert error.message.startswith("body: line 2: the template takes more than 100000 steps")
    assert "budget of one render" in error.message


def test_calls_count_against_the_budget() -> None:
    doubling = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(20) }}"
    )
    error = failure(lambda: Renderer().render(Source("sms", doubling), {}, None, no_layouts))
    assert "more than 100000 steps" in error.message


def test_the_cpu_time_budget_names_itself() -> None:
    r = Renderer(max_steps=10**9, max_cpu_seconds=0.01)
    error = failure(lambda: r.render(Source("sms", HUGE_LOOP), {}, None, no_layouts))
    assert "more than 0.01 s of CPU time" in error.message


def test_the_budget_covers_every_part_of_one_render_and_each_render_has_its_own() -> None:
    r = Renderer(max_steps=10)
    source = email("{% for i in range(5) %}{{ loop.index }}/{{ loop.length }} {% endfor %}")
    assert "1/5 2/5" in r.render(source, {"name": "a"}, None, no_layouts).text
    assert "1/5 2/5" in r.render(source, {"name": "a"}, None, no_layouts).text  # fresh budget
    both = email(source.body, subject="{% for i in range(6) %}{% endfor %}")
    assert "more than 10 steps" in failure(lambda: r.render(both, {}, None, no_layouts)).message


def test_saving_a_template_whose_check_render_runs_away_is_refused() -> None:
    source = Source("sms", HUGE_LOOP, variables=())
    assert "more than 100000 steps" in failure(lambda: Renderer().check(source, no_layouts)).message


async def test_renders_run_in_the_renderers_threads() -> None:
    r = Renderer()
    name = "{% for x in here %}{{ x }}{% endfor %}"
    out = await r.render_async(Source("sms", name), {"here": CurrentThread()}, None, no_layouts)
    assert out.body.startswith("notify-render")
    with pytest.raises(InvalidArgument, match="100000 steps"):
        await r.check_async(Source("sms", HUGE_LOOP, variables=()), no_layouts)


class CurrentThread:
    """Iterating it gives the name of the thread that iterates."""

    def __iter__(self) -> Any:
        yield threading.current_thread().name


async def test_a_batch_renders_in_one_hop_each_answer_in_order() -> None:
    renderer = Renderer()
    good = email("<p>{{ name }}</p>")
    broken = email("<p>{{ 1 // (n - n) }}</p>")
    got = await renderer.render_many_async(
        [
            (good, {"name": "Ann"}, NOTIFICATION, no_layouts),
            (broken, {"name": "Bob", "n": 1}, NOTIFICATION, no_layouts),
            (good, {"name": "Cy"}, NOTIFICATION, no_layouts),
        ]
    )
    first, error, last = got
    assert not isinstance(first, InvalidArgument) and first.subject == "Hi Ann"
    assert isinstance(error, InvalidArgument) and "division" in str(error)
    assert not isinstance(last, InvalidArgument) and "<p>Cy</p>" in (last.html or "")
