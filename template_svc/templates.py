"""Templates: what the RPCs, the REST routes and the delivery workers call.

One :class:`Templates` per node: it holds the store and the renderer, whose cache of
compiled templates every caller in the process shares.

The delivery worker renders a notification with :meth:`Templates.render_for` (email) or
:meth:`Templates.render_push` and :meth:`Templates.render_sms`. A template is looked up by
the notification's ``template`` name, the channel, and its ``locale`` through the
fallbacks (``fr-CA`` → ``fr`` → default); an email's layout is looked up the same way,
from the notification's locale.

An email naming a template that does not exist fails; a push or an SMS without one is sent
with the notification's own title and message, so that a producer can name one template
for every channel and publish it only for the channels that need their own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notify_core.constants import TEMPLATE_LAYOUT
from notify_core.db.engine import Database
from notify_core.errors import InvalidArgument, NotFound
from template_svc.render import LayoutLoader, Rendered, Renderer
from template_svc.store import StoredTemplate, TemplateStore, describe
from template_svc.validate import TemplateInput

_PARTS = ("subject", "body", "layout")
_TEXT_MESSAGE_CHANNELS = frozenset({"push", "sms"})
"""Channels whose body is sent stripped and must not be empty (:func:`_shaped`)."""


def _no_layouts(name: str) -> None:
    return None


def _shaped(channel: str, rendered: Rendered) -> Rendered:
    """A push or SMS body as it is sent: stripped (a template's line breaks around its
    tags would cost characters of an SMS), and refused when nothing is left; other
    channels as rendered."""
    if channel not in _TEXT_MESSAGE_CHANNELS:
        return rendered
    body = rendered.body.strip()
    if not body:
        raise InvalidArgument("body", f"renders to an empty {channel} message")
    return Rendered(rendered.subject, rendered.html, body, body)


@dataclass(frozen=True, slots=True)
class PushContent:
    """A push notification's text, rendered from a ``push`` template."""

    title: str
    """The template's title (``subject``) rendered, whitespace collapsed; the
    notification's own title when the template has none. ``""`` means no title line."""
    body: str
    """The body rendered, without leading or trailing whitespace; never empty."""


@dataclass(frozen=True, slots=True)
class SmsContent:
    """An SMS's text, rendered from an ``sms`` template; not yet cut to the segment limit."""

    body: str
    """The body rendered, without leading or trailing whitespace; never empty."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A template resolved for a locale, its layout with it: looked up once, rendered for
    many (a digest run renders one per user)."""

    template: StoredTemplate
    layouts: LayoutLoader
    renderer: Renderer

    async def render(
        self, data: Mapping[str, Any] | None, notification: Mapping[str, Any]
    ) -> Rendered:
        """As :meth:`Templates.render_for` renders (:class:`InvalidArgument` when it fails)."""
        return await self.renderer.render_async(
            self.template.source(), data, notification, self.layouts
        )


class Templates:
    def __init__(self, database: Database, renderer: Renderer | None = None) -> None:
        self.store = TemplateStore(database)
        self.renderer = renderer or Renderer()

    async def _layouts(self, layout: str | None, locale: str | None) -> LayoutLoader:
        """A loader holding the layout ``layout`` resolved for ``locale`` (if it exists)."""
        if not layout:
            return _no_layouts
        found = await self.store.resolve(layout, TEMPLATE_LAYOUT, locale)
        return {layout: found.source()}.get if found is not None else _no_layouts

    async def _check(self, template: TemplateInput) -> None:
        layouts = await self._layouts(template.layout, template.locale)
        if template.layout and layouts(template.layout) is None:
            where = f"locale {template.locale!r} or its fallbacks" if template.locale else "default"
            raise InvalidArgument("layout", f"no layout named {template.layout!r} ({where})")
        await self.renderer.check_async(template.source(), layouts)

    async def publish(self, template: TemplateInput) -> StoredTemplate:
        """Check ``template`` (syntax, layout, declared variables) and store it as the next
        version. Nothing is stored when a check fails (:class:`InvalidArgument`)."""
        await self._check(template)
        return await self.store.publish(template)

    async def get(
        self, name: str, channel: str, locale: str, version: int | None, fallback: bool = False
    ) -> StoredTemplate:
        """Version ``version`` (None: the latest) of name x channel x locale; with
        ``fallback``, the latest of the first locale of the chain that has one."""
        if not fallback:
            return await self.store.get(name, channel, locale, version)
        if version is not None:
            raise InvalidArgument("fallback", "cannot be combined with a version")
        found = await self.store.resolve(name, channel, locale)
        if found is None:
            raise NotFound(f"no {describe(name, channel, locale)} or fallback")
        return found

    async def render_for(
        self,
        name: str,
        channel: str,
        locale: str | None,
        data: Mapping[str, Any] | None,
        notification: Mapping[str, Any],
    ) -> Rendered:
        """Render the template ``name`` for a notification on ``channel``.

        The template sees ``data``'s keys at top level and ``notification`` (its ``id``,
        ``type``, ``title``, ``message``, ``user_id``; other keys of the mapping are not
        shown). Email: rendered subject, HTML with layout and inlined CSS, and a text part
        made from it; other channels: the body as text (see :class:`Rendered`).

        Raises :class:`NotFound` when no active template exists for ``name`` x ``channel``
        in ``locale`` or its fallbacks (the caller then sends title and message as they
        are), and :class:`InvalidArgument` when rendering fails: a variable missing from
        ``data`` (the field names it), or the template's layout deleted since.
        """
        resolved = await self.resolve(name, channel, locale)
        if resolved is None:
            raise NotFound(f"no {describe(name, channel, locale or '')} or fallback")
        return await resolved.render(data, notification)

    async def render_push(
        self,
        name: str | None,
        locale: str | None,
        data: Mapping[str, Any] | None,
        notification: Mapping[str, Any],
    ) -> PushContent | None:
        """The push of a notification from its ``push`` template ``name`` in ``locale`` or
        its fallbacks; None when ``name`` is empty or no such template is active (the
        caller then sends the notification's title and message).

        ``data`` and ``notification`` are as for :meth:`render_for`. Raises
        :class:`InvalidArgument` when rendering fails (a variable missing from ``data``:
        the field names it) or the body renders to nothing: that push cannot be sent."""
        rendered = await self._render_channel(name, "push", locale, data, notification)
        if rendered is None:
            return None
        title = rendered.subject
        if title is None:
            title = str(notification.get("title") or "")
        return PushContent(title=title, body=rendered.body)

    async def render_sms(
        self,
        name: str | None,
        locale: str | None,
        data: Mapping[str, Any] | None,
        notification: Mapping[str, Any],
    ) -> SmsContent | None:
        """The SMS of a notification from its ``sms`` template, as :meth:`render_push`
        finds and renders a push (None: no template, send the notification's message)."""
        rendered = await self._render_channel(name, "sms", locale, data, notification)
        return None if rendered is None else SmsContent(body=rendered.body)

    async def _render_channel(
        self,
        name: str | None,
        channel: str,
        locale: str | None,
        data: Mapping[str, Any] | None,
        notification: Mapping[str, Any],
    ) -> Rendered | None:
        """A text channel's template rendered, its body stripped and required."""
        if not name:
            return None
        resolved = await self.resolve(name, channel, locale)
        if resolved is None:
            return None
        return _shaped(channel, await resolved.render(data, notification))

    async def resolve(self, name: str, channel: str, locale: str | None) -> Resolved | None:
        """The template ``name`` for ``channel`` in ``locale`` or its fallbacks, with its
        layout, ready to render; None when there is none."""
        found = await self.store.resolve(name, channel, locale)
        if found is None:
            return None
        return Resolved(found, await self._layouts(found.layout, locale), self.renderer)

    async def preview(
        self,
        name: str,
        channel: str,
        locale: str,
        version: int | None,
        data: Mapping[str, Any],
        notification: Mapping[str, Any] | None,
    ) -> tuple[Rendered, StoredTemplate]:
        """Render a stored template as a send would: without ``version`` the latest, the
        locale resolved through its fallbacks; with it, that version of that locale."""
        if version is None:
            found = await self.store.resolve(name, channel, locale)
            if found is None:
                raise NotFound(f"no {describe(name, channel, locale)} or fallback")
        else:
            found = await self.store.get(name, channel, locale, version)
        layouts = await self._layouts(found.layout, locale)
        rendered = await self.renderer.render_async(found.source(), data, notification, layouts)
        return _shaped(channel, rendered), found

    async def preview_inline(
        self,
        template: TemplateInput,
        data: Mapping[str, Any],
        notification: Mapping[str, Any] | None,
    ) -> Rendered:
        """Check and render an unsaved template; errors in its parts are named
        ``template.subject``, ``template.body``, ``template.layout``."""
        try:
            await self._check(template)
            layouts = await self._layouts(template.layout, template.locale)
            rendered = await self.renderer.render_async(
                template.source(), data, notification, layouts
            )
            return _shaped(template.channel, rendered)
        except InvalidArgument as exc:
            if exc.field not in _PARTS:
                raise
            problem = exc.message.removeprefix(f"{exc.field}: ")
            raise InvalidArgument(f"template.{exc.field}", problem) from None
