"""The template service's public module: what the other services use of templates, and the
only template module they import (checked by `lint-imports`, `[tool.importlinter]`).

- `Templates` (the active version of a template, cached) for delivery and digests, with
  `Resolved`, what it answers;
- rendering: `Renderer`, `Source`, `Rendered` and `RenderJob` (a batch's one), for the
  digest message.

Each name loads from its home module when first imported (`notify_core/lazy.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notify_core.lazy import lazy_exports

if TYPE_CHECKING:
    from template_svc.render import Rendered, Renderer, RenderJob, Source
    from template_svc.templates import Resolved, Templates

__all__ = [
    "RenderJob",
    "Rendered",
    "Renderer",
    "Resolved",
    "Source",
    "Templates",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "template_svc.render": ("Rendered", "Renderer", "RenderJob", "Source"),
        "template_svc.templates": ("Resolved", "Templates"),
    },
)
