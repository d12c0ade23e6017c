"""Which decisions get a delivery record, as tables of cases (pure: no I/O).

A channel the plan considered (the matrix's or the producer's choice) is recorded whatever
happened to it: sent, held, merged, digested, or skipped by the user's preferences, a
missing contact point or a rate limit. A channel never considered is not recorded; the
deliveries listing derives it again from the notification, with the plan's own reason.
"""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from notify_core.domain import CHANNELS
from notify_core.ratelimit import Verdict
from router_svc.batch import recorded, status_of
from router_svc.inputs import unchosen_decisions
from router_svc.plan import Action, Config, Earlier, Facts, Plan, Preferences, plan
from router_svc.quiet_hours import QuietHours
from tests.support.plans import EVERYTHING, NOW

# A user with an email address and nothing else: the default send of the benchmarks.
EMAIL_ONLY = Preferences(email="a@example.com")
NIGHT = Preferences(
    switches=EVERYTHING.switches,
    email="a@example.com",
    has_push_device=True,
    quiet_hours=QuietHours(time(11, 0), time(13, 0), "UTC"),
)
NO_EMAIL = Preferences(
    switches={**EVERYTHING.switches, "email": False}, email="a@example.com", phone="+1"
)
LIMITED = Verdict(False, 60.0, 0)
GROUPED = Earlier("head", NOW - timedelta(minutes=1))


def planned(
    priority: str = "normal",
    *,
    online: bool = False,
    prefs: Preferences = EVERYTHING,
    channels: list[str] | None = None,
    group_key: str | None = None,
    earlier: Earlier | None = None,
    rates: dict[str, Verdict] | None = None,
) -> Plan:
    return plan(
        Facts("comment", priority, channels, group_key),
        prefs,
        online=online,
        earlier=earlier,
        rates=rates or {},
        now=NOW,
        config=Config(),
    )


def shown(p: Plan) -> dict[str, str]:
    """What each recorded channel is recorded with: its status."""
    return {d.channel: status_of(d) for d in recorded(p)}


@pytest.mark.parametrize(
    ("p", "rows", "unchosen"),
    [
        pytest.param(
            planned(prefs=EMAIL_ONLY),
            {"inapp": "delivered", "email": "pending", "push": "skipped", "webpush": "skipped"},
            ("sms", "webhook"),
            id="normal-offline-default-user",
        ),
        pytest.param(
            planned(prefs=EMAIL_ONLY, online=True),
            {"inapp": "delivered"},
            ("email", "sms", "push", "webpush", "webhook"),
            id="normal-online-default-user",
        ),
        pytest.param(
            planned("high"),
            {c: "delivered" if c == "inapp" else "pending" for c in CHANNELS},
            (),
            id="high-offline-reachable-everywhere",
        ),
        pytest.param(
            planned("high", online=True),
            {
                "inapp": "delivered",
                "push": "pending",
                "webpush": "pending",
                "webhook": "pending",
            },
            ("email", "sms"),
            id="high-online",
        ),
        pytest.param(
            planned("low", prefs=EMAIL_ONLY),
            {"inapp": "delivered", "email": "digested"},
            ("sms", "push", "webpush", "webhook"),
            id="low-to-the-digest",
        ),
        pytest.param(
            planned(channels=["email"], prefs=EMAIL_ONLY, online=True),
            {"email": "pending"},
            ("inapp", "sms", "push", "webpush", "webhook"),
            id="named-email-only",
        ),
        pytest.param(
            planned(channels=["sms", "inapp"], prefs=NO_EMAIL),
            {"inapp": "delivered", "sms": "pending"},
            ("email", "push", "webpush", "webhook"),
            id="named-sms-and-inapp",
        ),
        pytest.param(
            planned(prefs=NO_EMAIL),
            {
                "inapp": "delivered",
                "email": "skipped",
                "push": "skipped",
                "webpush": "skipped",
            },
            ("sms", "webhook"),
            id="considered-but-switched-off-or-unreachable-is-recorded",
        ),
        pytest.param(
            planned(prefs=NIGHT),
            {"inapp": "delivered", "email": "held", "push": "held", "webpush": "skipped"},
            ("sms", "webhook"),
            id="quiet-hours-hold-is-recorded",
        ),
        pytest.param(
            planned(rates={"email": LIMITED, "push": LIMITED}),
            {
                "inapp": "delivered",
                "email": "digested",
                "push": "held",
                "webpush": "pending",
                "webhook": "pending",
            },
            ("sms",),
            id="rate-limited-is-recorded",
        ),
        pytest.param(
            planned(prefs=EMAIL_ONLY, online=True, group_key="g", earlier=GROUPED),
            {"inapp": "merged"},
            ("email", "sms", "push", "webpush", "webhook"),
            id="merged-online",
        ),
        pytest.param(
            planned(prefs=EMAIL_ONLY, group_key="g", earlier=GROUPED),
            {"inapp": "merged", "email": "merged", "push": "skipped", "webpush": "skipped"},
            ("sms", "webhook"),
            id="merged-offline",
        ),
    ],
)
def test_only_considered_channels_are_recorded(
    p: Plan, rows: dict[str, str], unchosen: tuple[str, ...]
) -> None:
    assert shown(p) == rows
    assert p.unchosen() == unchosen
    assert all(p.decision(c).action is Action.SKIP for c in unchosen)


@pytest.mark.parametrize(
    ("priority", "online", "channels", "reason"),
    [
        ("normal", True, None, "not chosen for this priority"),
        ("low", False, None, "not chosen for this priority"),
        ("high", True, None, "not chosen for this priority"),
        ("normal", True, ["email"], "not requested by the producer"),
        ("high", False, ["webhook", "inapp"], "not requested by the producer"),
    ],
)
def test_the_listing_derives_what_the_plan_left_out(
    priority: str, online: bool, channels: list[str] | None, reason: str
) -> None:
    p = planned(priority, online=online, channels=channels)
    rows = {d.channel for d in recorded(p)}
    derived = unchosen_decisions(channels, rows, NOW)
    assert [d["channel"] for d in derived] == list(p.unchosen())
    assert {d["reason"] for d in derived} <= {reason}
    assert all(p.decision(d["channel"]).reason == d["reason"] for d in derived)
    assert all(d["status"] == "skipped" and d["id"] is None for d in derived)
    assert rows | {d["channel"] for d in derived} == set(CHANNELS)


def test_nothing_is_derived_when_every_channel_is_recorded() -> None:
    assert unchosen_decisions(None, set(CHANNELS), NOW) == []
