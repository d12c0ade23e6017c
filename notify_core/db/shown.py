"""Delivery rows as readers see them: a put-aside email reads ``digest_sent`` once the
digest carrying it is sent (:func:`notify_core.domain.shown_status`), although the row
itself was written only once, when the digest took it.

The SQL forms here join ``digests`` on the row's ``digest_id`` (indexed) and give the same
answer as the pure function, for readers that work on sets: the deliveries endpoint, the
delivery statistics, tests.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from notify_core.db.schema import digests, notification_deliveries
from notify_core.domain import DeliveryStatus

carrier = digests.alias("carrier")
"""The digest carrying a delivery, if any (outer-joined by :data:`with_carrier`)."""

with_carrier = notification_deliveries.outerjoin(
    carrier, carrier.c.id == notification_deliveries.c.digest_id
)
"""``notification_deliveries`` with the digest carrying each row (NULLs when none)."""


def shown_status_sql() -> sa.ColumnElement[Any]:
    """:func:`~notify_core.domain.shown_status` over :data:`with_carrier`."""
    d = notification_deliveries.c
    return sa.case(
        (
            sa.and_(
                d.status == DeliveryStatus.DIGESTED.value,
                carrier.c.status == DeliveryStatus.SENT.value,
            ),
            sa.literal(DeliveryStatus.DIGEST_SENT.value, sa.String()),
        ),
        else_=d.status,
    )


def shown_deliveries() -> sa.Select[Any]:
    """``SELECT`` every column of ``notification_deliveries`` as readers see it: ``status``
    by :func:`shown_status_sql`, and ``sent_at`` the carrying digest's when the row has
    none of its own (a digest's items are sent when it is). Add ``where``/``order_by``."""
    d = notification_deliveries.c
    columns = [
        shown_status_sql().label("status")
        if c.name == "status"
        else sa.func.coalesce(d.sent_at, carrier.c.sent_at, type_=d.sent_at.type).label("sent_at")
        if c.name == "sent_at"
        else c
        for c in notification_deliveries.c
    ]
    return sa.select(*columns).select_from(with_carrier)
