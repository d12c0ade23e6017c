"""Rendering templates: Jinja2, sandboxed, strict about missing variables (pure, no I/O).

Two sandboxed environments (:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: no
underscore attributes, no changing lists or dicts, no unsafe callables):

- **HTML** (email bodies and layouts): autoescaped, so markup and script arriving in
  notification data are escaped, while the template's own markup is not;
- **text** (subjects and the bodies of every other channel): not escaped, still sandboxed.

Both use strict undefined: a variable missing from the data fails the render with
:class:`InvalidArgument` naming it (``data.<path>``, or ``notification.<field>``) and the
line it is used on; ``None`` renders as an empty string. ``*`` and ``**`` may not build
huge strings, lists or numbers, and a rendered part is at most ``MAX_RENDERED_CHARS``.

**Budget.** One render (all its parts) may take ``TEMPLATE_MAX_STEPS`` loop iterations
and calls and ``TEMPLATE_MAX_CPU_SECONDS`` of CPU time (:mod:`template_svc.budget`); past
either it fails with :class:`InvalidArgument` naming the budget. Services call
:meth:`Renderer.render_async` and :meth:`Renderer.check_async`, which run in the
renderer's own threads (``TEMPLATE_RENDER_THREADS``), never on the event loop.

**Layouts** are HTML templates of channel ``layout`` with a ``{% block content %}``. An email
template that names one is compiled as ``{% extends layout %}{% block content %}<body>
{% endblock %}``; the layout comes from the :data:`LayoutLoader` the caller gives (the store
loads it beforehand, so this module stays free of I/O). Templates may not ``extend``,
``include`` or ``import`` anything themselves.

An email renders to its subject (whitespace, line breaks included, collapsed to single
spaces), its HTML (layout applied, then CSS from ``<style>`` inlined into ``style``
attributes; ``@media`` rules stay in a ``<style>``; remote stylesheets are never fetched)
and a plain-text part made from that HTML — or rendered from the template's own ``text``
part when it has one (built-in templates do: it costs less than converting HTML). Other
channels render their body as text.

Compiled templates are cached per stored version, ``(name, channel, locale, version)``,
least recently used dropped first; versions never change once published, so the cache
needs no invalidation. Unsaved (preview) templates are compiled each time.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notify_core.constants import (
    MAX_RENDERED_CHARS,
    MAX_TEMPLATE_REPEAT,
    TEMPLATE_CACHE_SIZE,
    TEMPLATE_LAYOUT,
    TEMPLATE_MAX_CPU_SECONDS,
    TEMPLATE_MAX_STEPS,
    TEMPLATE_RENDER_THREADS,
)
from notify_core.errors import InvalidArgument
from template_svc.budget import STEP_FILTER, budget, count_loops, counted, step
from template_svc.context import (
    MissingVariable,
    StrictData,
    placeholder_context,
    template_context,
)
from template_svc.text import html_to_text

if TYPE_CHECKING:
    import css_inline

CacheKey = tuple[str, str, str, int]
"""A stored version: name, channel, locale ('' = default), version."""
_LAYOUT_VAR = "_notify_layout"
_PARTS = ("subject", "body", "layout", "text")
"""Template file names; a render error is placed by the last of them in its traceback."""
T = TypeVar("T")


@cache
def _inliner() -> css_inline.CSSInliner:
    """The CSS inliner, made (and css_inline imported) at the first email render: an edge
    process, which imports this module for its template routes, seldom renders one."""
    import css_inline

    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True, slots=True)
class Source:
    """One template as stored, or given inline for a preview (``key`` None: not cached)."""

    channel: str
    body: str
    subject: str | None = None
    layout: str | None = None
    variables: tuple[str, ...] | None = None
    key: CacheKey | None = None
    text: str | None = None
    """Email only: the plain-text part's own template (None: made from the HTML)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered template.

    Email: ``subject``; ``html``, the final HTML (layout applied, CSS inlined); ``text``,
    the plain-text part made from it; ``body`` is ``html`` again. Other channels:
    ``subject`` when the template has one (a push or in-app title), ``html`` None, and
    ``text`` and ``body`` both the rendered body.
    """

    subject: str | None
    html: str | None
    text: str
    body: str


LayoutLoader = Callable[[str], Source | None]
"""Answers the layout of a name (already resolved for the locale), or None."""
RenderJob = tuple[Source, Mapping[str, Any] | None, Mapping[str, Any] | None, LayoutLoader]
"""What :meth:`Renderer.render_many_async` renders: :meth:`Renderer.render`'s arguments."""


# --- the sandbox ------------------------------------------------------------------------


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, refusing ``*`` and ``**`` that would build something huge,
    and counting every call against the render's budget."""

    intercepted_binops = frozenset({"*", "**"})

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        step()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_TEMPLATE_REPEAT
                ):
                    raise SecurityError(f"repeating makes more than {MAX_TEMPLATE_REPEAT} items")
        elif (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right > 0
            and left.bit_length() * right > MAX_TEMPLATE_REPEAT * 8
        ):
            raise SecurityError("the power is too large")
        return super().call_binop(context, operator, left, right)


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _environment(html: bool) -> _Sandbox:
    env = _Sandbox(undefined=StrictData, autoescape=html, finalize=_finalize)
    env.filters[STEP_FILTER] = counted
    return env


# --- errors -----------------------------------------------------------------------------


def _location(tb: TracebackType | None) -> tuple[str, int] | None:
    """The template part and line of the innermost template frame of a traceback."""
    found = None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in _PARTS:
            found = (name, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _render_error(exc: Exception, layout: str | None) -> InvalidArgument:
    """``exc``, raised by a template while rendering, as the error the caller sees."""
    part, line = _location(exc.__traceback__) or ("body", None)
    label = f"layout {layout!r}" if part == "layout" and layout else part
    if isinstance(exc, MissingVariable) and exc.field:
        where = f"{label}, line {line}" if line else label
        return InvalidArgument(exc.field, f"is undefined (used in {where})")
    if isinstance(exc, TemplateSyntaxError):
        line = exc.lineno
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return InvalidArgument(part, f"line {line}: {message}" if line else message)


# --- the renderer -----------------------------------------------------------------------


class Renderer:
    """Checks and renders templates; holds the compiled-template cache of one process."""

    def __init__(
        self,
        cache_size: int = TEMPLATE_CACHE_SIZE,
        *,
        max_steps: int = TEMPLATE_MAX_STEPS,
        max_cpu_seconds: float = TEMPLATE_MAX_CPU_SECONDS,
        threads: int = TEMPLATE_RENDER_THREADS,
    ) -> None:
        self._html = _environment(html=True)
        self._text = _environment(html=False)
        self._cache: OrderedDict[tuple[CacheKey, str], Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_size = cache_size
        self._max_steps = max_steps
        self._max_cpu = max_cpu_seconds
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self.hits = 0
        self.misses = 0

    def _env(self, html: bool) -> _Sandbox:
        return self._html if html else self._text

    # -- compiling --------------------------------------------------------------------

    def _parse(self, env: _Sandbox, text: str, part: str) -> nodes.Template:
        try:
            return env.parse(text, filename=part)
        except TemplateSyntaxError as exc:
            raise InvalidArgument(part, f"line {exc.lineno}: {exc.message}") from None

    def _compile(self, env: _Sandbox, text: str, part: str, key: CacheKey | None) -> Any:
        if key is not None:
            with self._cache_lock:
                cached = self._cache.get((key, part))
                if cached is not None:
                    self._cache.move_to_end((key, part))
                    self.hits += 1
                    return cached
                self.misses += 1
        tree = count_loops(self._parse(env, text, part))
        try:
            code = env.compile(tree, name=part, filename=part)
        except TemplateSyntaxError as exc:
            raise InvalidArgument(part, f"line {exc.lineno}: {exc.message}") from None
        template = env.template_class.from_code(env, code, env.make_globals(None))
        if key is not None:
            with self._cache_lock:
                self._cache[(key, part)] = template
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return template

    # -- off the event loop -----------------------------------------------------------

    async def _in_thread(self, work: Callable[[], T]) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="notify-render")
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def render_async(
        self,
        source: Source,
        data: Mapping[str, Any] | None,
        notification: Mapping[str, Any] | None,
        layouts: LayoutLoader,
    ) -> Rendered:
        """:meth:`render` in one of the renderer's threads."""
        return await self._in_thread(lambda: self.render(source, data, notification, layouts))

    async def render_many_async(
        self, jobs: Sequence[RenderJob]
    ) -> list[Rendered | InvalidArgument]:
        """:meth:`render` of every job in one hop to the renderer's threads (a digest run
        renders a batch of a thousand: one hop each cost more than the rendering's own
        bookkeeping); each answer in order, what was rendered or why it failed."""
        return await self._in_thread(lambda: [self._render_or_error(*job) for job in jobs])

    def _render_or_error(
        self,
        source: Source,
        data: Mapping[str, Any] | None,
        notification: Mapping[str, Any] | None,
        layouts: LayoutLoader,
    ) -> Rendered | InvalidArgument:
        try:
            return self.render(source, data, notification, layouts)
        except InvalidArgument as exc:
            return exc

    async def check_async(self, source: Source, layouts: LayoutLoader) -> None:
        """:meth:`check` in one of the renderer's threads."""
        await self._in_thread(lambda: self.check(source, layouts))

    def _body(self, source: Source) -> Any:
        html = source.channel in ("email", TEMPLATE_LAYOUT)
        text = source.body
        if source.layout:
            text = f"{{% extends {_LAYOUT_VAR} %}}{{% block content %}}{text}{{% endblock %}}"
        return self._compile(self._env(html), text, "body", source.key)

    def _layout(self, source: Source, layouts: LayoutLoader) -> Any | None:
        if not source.layout:
            return None
        layout = layouts(source.layout)
        if layout is None:
            raise InvalidArgument("layout", f"no layout named {source.layout!r}")
        return self._compile(self._html, layout.body, "layout", layout.key)

    # -- rendering --------------------------------------------------------------------

    def _run(self, template: Any, context: dict[str, Any], part: str) -> str:
        """``template`` rendered; what the template raises is left to the caller."""
        out: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                raise InvalidArgument(part, f"renders to more than {MAX_RENDERED_CHARS} characters")
            out.append(chunk)
        return "".join(out)

    def render(
        self,
        source: Source,
        data: Mapping[str, Any] | None,
        notification: Mapping[str, Any] | None,
        layouts: LayoutLoader,
    ) -> Rendered:
        """Render ``source`` with ``data`` and ``notification`` (see :func:`template_context`).

        Raises :class:`InvalidArgument` naming the missing variable (``data.<path>``) or
        the part (``subject``, ``body``, ``layout``) with its line."""
        try:
            return self._render(source, template_context(data, notification), layouts)
        except InvalidArgument:
            raise
        except Exception as exc:  # whatever the template raised: its author's to fix
            raise _render_error(exc, source.layout) from None

    def _render(self, source: Source, context: dict[str, Any], layouts: LayoutLoader) -> Rendered:
        with budget(self._max_steps, self._max_cpu):
            return self._render_parts(source, context, layouts)

    def _render_parts(
        self, source: Source, context: dict[str, Any], layouts: LayoutLoader
    ) -> Rendered:
        subject = None
        if source.subject is not None:
            compiled = self._compile(self._text, source.subject, "subject", source.key)
            subject = " ".join(self._run(compiled, context, "subject").split())
        layout = self._layout(source, layouts)
        if layout is not None:
            context = {**context, _LAYOUT_VAR: layout}
        body = self._run(self._body(source), context, "body")
        if source.channel not in ("email", TEMPLATE_LAYOUT):
            return Rendered(subject, None, body, body)
        if source.text is None:
            text = html_to_text(body)
        else:
            compiled = self._compile(self._text, source.text, "text", source.key)
            text = self._run(compiled, context, "text")
        try:
            html = _inliner().inline(body)
        except ValueError as exc:
            raise InvalidArgument("body", f"its CSS cannot be inlined: {exc}") from None
        return Rendered(subject, html, text, html)

    # -- checking at save -------------------------------------------------------------

    def check(self, source: Source, layouts: LayoutLoader) -> None:
        """Check a template about to be saved: it compiles, uses no other template, a layout
        has its ``content`` block; with declared ``variables``, it uses no other variable
        and renders once with placeholders for exactly those."""
        html = source.channel in ("email", TEMPLATE_LAYOUT)
        parsed: dict[str, nodes.Template] = {}
        if source.subject is not None:
            parsed["subject"] = self._parse(self._text, source.subject, "subject")
        parsed["body"] = self._parse(self._env(html), source.body, "body")
        for part, tree in parsed.items():
            for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import)):
                raise InvalidArgument(
                    part,
                    f"line {node.lineno}: templates may not extend, include or import "
                    "other templates (email templates name a layout instead)",
                )
            for node in tree.find_all(nodes.FromImport):
                raise InvalidArgument(part, f"line {node.lineno}: templates may not import")
        if source.channel == TEMPLATE_LAYOUT and "content" not in {
            b.name for b in parsed["body"].find_all(nodes.Block)
        }:
            raise InvalidArgument(
                "body", "a layout needs {% block content %}{% endblock %} where templates go"
            )
        if source.variables is None:
            return
        declared = set(source.variables)
        allowed = declared | {"notification"} | set(self._html.globals)
        for part, tree in parsed.items():
            undeclared = sorted(find_undeclared_variables(tree) - allowed)
            if undeclared:
                name = undeclared[0]
                line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), None)
                raise InvalidArgument(part, _not_declared(name, line, declared))
        context = placeholder_context(declared)
        try:
            self._render(source, context, layouts)
        except InvalidArgument:
            raise
        except MissingVariable as exc:
            if exc.field and exc.field.startswith("data."):  # used by the layout
                part, line = _location(exc.__traceback__) or ("body", None)
                name = exc.field.removeprefix("data.")
                raise InvalidArgument(part, _not_declared(name, line, declared)) from None
            raise _render_error(exc, source.layout) from None
        except SecurityError as exc:
            raise _render_error(exc, source.layout) from None
        except Exception:  # types and values depend on the real data: left to render time
            pass


def _not_declared(name: str, line: int | None, declared: set[str]) -> str:
    where = f"line {line}: " if line else ""
    names = ", ".join(sorted(declared)) or "none"
    return f"{where}uses {name!r}, which is not a declared variable (declared: {names})"
