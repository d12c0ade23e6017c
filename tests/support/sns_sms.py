"""What moto's SNS (the server of the ``moto_url`` fixture, :mod:`tests.support.ses`)
holds of the texts published to phone numbers, and the numbers it has opted out."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

OPTED_OUT = "+447700900199"
"""moto's SNS reports every number ending in 99 as opted out."""


def published_sms(moto_url: str) -> dict[str, dict[str, Any]]:
    """Texts moto's SNS holds, by MessageId (``phone_number``, ``message``)."""
    with urllib.request.urlopen(f"{moto_url}/moto-api/data.json", timeout=10) as r:
        data = json.loads(r.read())
    return {m["message_id"]: m for m in data["sns"]["SMS"]}
