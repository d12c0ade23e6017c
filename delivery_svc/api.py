"""Delivery's public module: what the other services use of delivery, and the only
delivery module they import (checked by `lint-imports`, `[tool.importlinter]`).

- the router stages delivery jobs with `group_jobs` and `stage_jobs`;
- the digest runner sends through the same email providers as the email channel:
  `EmailSettings`, `create_email_providers` and `FailoverEmail` (primary and fallback
  behind breakers), the message types `EmailMessage` and `Outcome`, and the parts of an
  email that delivery and digests share: `message_id`, `unsubscribe_link` and
  `suppressed_addresses`.

Each name loads from its home module when first imported (`notify_core/lazy.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notify_core.lazy import lazy_exports

if TYPE_CHECKING:
    from delivery_svc.channels import FailoverEmail, suppressed_addresses
    from delivery_svc.compose import message_id, unsubscribe_link
    from delivery_svc.config_email import EmailSettings
    from delivery_svc.jobs import group_jobs, stage_jobs
    from delivery_svc.providers.base import EmailMessage, Outcome
    from delivery_svc.providers.registry import create_email_providers

__all__ = [
    "EmailMessage",
    "EmailSettings",
    "FailoverEmail",
    "Outcome",
    "create_email_providers",
    "group_jobs",
    "message_id",
    "stage_jobs",
    "suppressed_addresses",
    "unsubscribe_link",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "delivery_svc.channels": ("FailoverEmail", "suppressed_addresses"),
        "delivery_svc.compose": ("message_id", "unsubscribe_link"),
        "delivery_svc.config_email": ("EmailSettings",),
        "delivery_svc.jobs": ("group_jobs", "stage_jobs"),
        "delivery_svc.providers.base": ("EmailMessage", "Outcome"),
        "delivery_svc.providers.registry": ("create_email_providers",),
    },
)
