"""Delivery's public module: what the other services use of delivery, and the only
delivery module they import (checked by `lint-imports`, `[tool.importlinter]`).

- the router stages delivery jobs with `group_jobs` and `stage_jobs`;
- a digest run hands its digests to delivery: it stores each rendered `EmailMessage` as
  `message_json` and stages a `delivery_message` job per digest on `deliver.digest.low`;
  the delivery service's `digest_worker` sends them (`notify digest run` with no node up
  starts one, with `EmailSettings`, `create_email_providers` and `FailoverEmail`). The
  parts of an email that delivery and digests share: `message_id`, `unsubscribe_link`,
  `suppressed_addresses` and `Outcome`.

Each name loads from its home module when first imported (`notify_core/lazy.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notify_core.lazy import lazy_exports

if TYPE_CHECKING:
    from delivery_svc.channels import FailoverEmail, suppressed_addresses
    from delivery_svc.compose import message_id, unsubscribe_link
    from delivery_svc.config_email import EmailSettings
    from delivery_svc.digests import digest_worker, message_json
    from delivery_svc.jobs import delivery_message, group_jobs, stage_jobs
    from delivery_svc.providers.base import EmailMessage, Outcome
    from delivery_svc.providers.registry import create_email_providers

__all__ = [
    "EmailMessage",
    "EmailSettings",
    "FailoverEmail",
    "Outcome",
    "create_email_providers",
    "delivery_message",
    "digest_worker",
    "group_jobs",
    "message_id",
    "message_json",
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
        "delivery_svc.digests": ("digest_worker", "message_json"),
        "delivery_svc.jobs": ("delivery_message", "group_jobs", "stage_jobs"),
        "delivery_svc.providers.base": ("EmailMessage", "Outcome"),
        "delivery_svc.providers.registry": ("create_email_providers",),
    },
)
