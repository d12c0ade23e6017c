"""TemplateService from a node's template store."""

from __future__ import annotations

from notify_core.parts import Parts
from template_svc import service
from template_svc.templates import Templates


def assemble(templates: Templates) -> Parts:
    return Parts(specs=[service.spec(templates)])
