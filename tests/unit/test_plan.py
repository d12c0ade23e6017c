"""The routing plan for the in-app channel (pure)."""

from __future__ import annotations

import pytest

from router_svc.plan import Action, plan


@pytest.mark.parametrize(
    ("channels", "inapp"),
    [
        (None, True),
        (["inapp"], True),
        (["email", "inapp"], True),
        (["email"], False),
        (["sms", "push"], False),
    ],
)
def test_inapp_is_sent_unless_the_producer_named_other_channels(
    channels: list[str] | None, inapp: bool
) -> None:
    p = plan(channels)
    assert p.sends("inapp") is inapp
    (decision,) = p.decisions
    assert decision.action is (Action.SEND if inapp else Action.SKIP)
    assert decision.reason
