"""Names no other test uses."""

from __future__ import annotations

import uuid


def uid(prefix: str = "user") -> str:
    """A fresh id such as ``user-1f0c9a2b3d``, for users and anything else a test names."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
