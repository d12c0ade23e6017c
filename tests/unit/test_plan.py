"""The routing plan, as tables of cases (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from notify_core.ratelimit import Verdict
from router_svc.plan import Action, Config, Earlier, Facts, Plan, Preferences, plan
from router_svc.quiet_hours import QuietHours
from tests.support.plans import EVERYTHING, NOW


def run(
    priority: str = "normal",
    *,
    online: bool = False,
    prefs: Preferences = EVERYTHING,
    channels: list[str] | None = None,
    earlier: Earlier | None = None,
    rates: dict[str, Verdict] | None = None,
    now: datetime = NOW,
    config: Config | None = None,
    type_: str = "comment",
    group_key: str | None = None,
) -> Plan:
    return plan(
        Facts(type=type_, priority=priority, channels=channels, group_key=group_key),
        prefs,
        online=online,
        earlier=earlier,
        rates=rates or {},
        now=now,
        config=config,
    )


def actions(p: Plan) -> dict[str, str]:
    return {d.channel: d.action.value for d in p.decisions}


S, D, K = "send", "digest", "skip"


@pytest.mark.parametrize(
    ("priority", "online", "expected"),
    [
        ("high", False, {"inapp": S, "push": S, "webpush": S, "sms": S, "email": S}),
        ("high", True, {"inapp": S, "push": S, "webpush": S, "sms": K, "email": K}),
        ("normal", True, {"inapp": S, "push": K, "webpush": K, "sms": K, "email": K}),
        ("normal", False, {"inapp": S, "push": S, "webpush": S, "sms": K, "email": S}),
        ("low", True, {"inapp": S, "push": K, "webpush": K, "sms": K, "email": D}),
        ("low", False, {"inapp": S, "push": K, "webpush": K, "sms": K, "email": D}),
    ],
)
def test_every_cell_of_the_matrix(priority: str, online: bool, expected: dict[str, str]) -> None:
    got = actions(run(priority, online=online))
    assert {c: got[c] for c in expected} == expected
    assert got["webhook"] == S  # the user has a webhook URL


def test_explicit_channels_replace_the_matrix() -> None:
    got = actions(run("high", channels=["email", "inapp"]))
    assert got == {
        "inapp": S,
        "email": S,
        "sms": K,
        "push": K,
        "webpush": K,
        "webhook": K,
    }
    assert run("high", channels=["sms"]).decision("push").reason == "not requested by the producer"
    assert run(channels=["email"]).decision("email").reason == "requested by the producer"


@pytest.mark.parametrize(
    ("priority", "online", "channels", "expected"),
    [
        # outside the matrix: named channels are sent all the same
        ("normal", True, ["email"], {"email": S, "inapp": K, "push": K, "webpush": K}),
        ("normal", True, ["push", "sms"], {"push": S, "sms": S, "webpush": K, "inapp": K}),
        ("high", True, ["email", "sms"], {"email": S, "sms": S, "push": K, "inapp": K}),
        ("low", True, ["email"], {"email": S, "inapp": K}),  # named: sent, not digested
        ("low", False, ["inapp", "webhook"], {"inapp": S, "webhook": S, "email": K}),
        # inside the matrix: narrowed to what is named (web push does not follow push)
        ("normal", False, ["push"], {"push": S, "webpush": K, "email": K, "inapp": K}),
        ("high", False, ["inapp"], {"inapp": S, "push": K, "sms": K, "email": K}),
    ],
)
def test_named_channels_are_sent_whatever_the_priority_and_presence(
    priority: str, online: bool, channels: list[str], expected: dict[str, str]
) -> None:
    got = actions(run(priority, online=online, channels=channels))
    assert {c: got[c] for c in expected} == expected


def test_inapp_is_left_out_only_when_channels_are_named_without_it() -> None:
    for priority in ("high", "normal", "low"):
        for online in (True, False):
            assert run(priority, online=online).sends("inapp")
            assert run(priority, online=online, channels=["inapp"]).sends("inapp")
            without = run(priority, online=online, channels=["webhook"]).decision("inapp")
            assert (without.action, without.reason) == (
                Action.SKIP,
                "not requested by the producer",
            )


@pytest.mark.parametrize(
    ("prefs", "channel", "reason"),
    [
        (Preferences(email=None, has_push_device=True), "email", "no email address"),
        (Preferences(email="a@b.c", has_push_device=False), "push", "no registered device"),
        (
            Preferences(
                switches={"email": False, "push": True, "inapp": True},
                email="a@b.c",
                has_push_device=True,
            ),
            "email",
            "switched off by the user",
        ),
        (
            Preferences(per_type={"comment": {"push": False}}, email="a@b.c", has_push_device=True),
            "push",
            "switched off by the user",
        ),
        (Preferences(switches={"inapp": False}), "inapp", "switched off by the user"),
    ],
)
def test_preferences_and_contact_points_skip_with_a_reason(
    prefs: Preferences, channel: str, reason: str
) -> None:
    decision = run("normal", prefs=prefs).decision(channel)
    assert (decision.action, decision.reason) == (Action.SKIP, reason)


def test_per_type_override_can_switch_a_channel_on() -> None:
    prefs = Preferences(
        switches={"sms": False}, per_type={"alert": {"sms": True}}, phone="+14155550100"
    )
    assert run("high", prefs=prefs, type_="alert").sends("sms")
    assert not run("high", prefs=prefs, type_="comment").sends("sms")


def test_sms_is_off_by_default() -> None:
    assert run("high", prefs=Preferences(phone="+14155550100")).decision("sms").reason == (
        "switched off by the user"
    )


@pytest.mark.parametrize(
    ("prefs", "reason"),
    [
        (Preferences(switches={"email": False}, email="a@b.c"), "switched off by the user"),
        (
            Preferences(per_type={"comment": {"email": False}}, email="a@b.c"),
            "switched off by the user",
        ),
        (Preferences(email=None), "no email address"),
    ],
)
def test_a_named_channel_still_obeys_the_user(prefs: Preferences, reason: str) -> None:
    decision = run(online=True, prefs=prefs, channels=["email"]).decision("email")
    assert (decision.action, decision.reason) == (Action.SKIP, reason)


@pytest.mark.parametrize(
    ("age", "window", "merged"),
    [
        (timedelta(minutes=5), None, True),
        (timedelta(minutes=59, seconds=59), None, True),
        (timedelta(hours=1), None, False),
        (timedelta(minutes=20), timedelta(minutes=10), False),
        (timedelta(minutes=5), timedelta(minutes=10), True),
    ],
)
def test_group_key_window(age: timedelta, window: timedelta | None, merged: bool) -> None:
    config = Config(dedup_window_by_type={"comment": window}) if window else None
    p = run(earlier=Earlier("n-1", NOW - age), config=config, group_key="post-1")
    inapp = p.decision("inapp")
    if merged:
        assert (inapp.action, inapp.merge_into) == (Action.MERGE, "n-1")
        assert p.action("email") is Action.MERGE
        assert p.merge_into() == "n-1"
    else:
        assert inapp.action is Action.SEND
        assert p.merge_into() is None


@pytest.mark.parametrize(
    ("group_key", "channels", "prefs", "merged"),
    [
        ("post-1", None, EVERYTHING, True),
        (None, None, EVERYTHING, False),  # no group key: its own entry, whatever the type
        ("post-1", ["inapp", "email"], EVERYTHING, True),
        ("post-1", ["email"], EVERYTHING, False),  # not for the inbox: nothing to merge into
        ("post-1", None, Preferences(switches={"inapp": False}), False),
    ],
)
def test_only_a_grouped_send_for_the_inbox_merges(
    group_key: str | None, channels: list[str] | None, prefs: Preferences, merged: bool
) -> None:
    p = run(
        earlier=Earlier("n-1", NOW - timedelta(minutes=1)),
        group_key=group_key,
        channels=channels,
        prefs=prefs,
    )
    assert (p.merge_into() == "n-1") is merged
    assert all(d.action is not Action.MERGE for d in p.decisions) is not merged


NIGHT = QuietHours(time(22), time(7), "Europe/Paris")
AT_NIGHT = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)  # 23:30 in Paris (CEST)
MORNING = datetime(2026, 6, 2, 5, 0, tzinfo=UTC)  # 07:00 in Paris


@pytest.mark.parametrize(
    ("priority", "breaks", "push", "inapp"),
    [
        ("normal", True, Action.HOLD, Action.SEND),
        ("high", True, Action.SEND, Action.SEND),
        ("high", False, Action.HOLD, Action.SEND),
    ],
)
def test_quiet_hours_hold_interruptive_channels(
    priority: str, breaks: bool, push: Action, inapp: Action
) -> None:
    prefs = Preferences(
        quiet_hours=NIGHT, high_breaks_quiet_hours=breaks, has_push_device=True, email="a@b.c"
    )
    p = run(priority, prefs=prefs, now=AT_NIGHT)
    assert p.action("push") is push
    assert p.action("inapp") is inapp
    if push is Action.HOLD:
        assert p.decision("push").until == MORNING
        assert p.decision("email").until == MORNING


def test_outside_quiet_hours_nothing_is_held() -> None:
    prefs = Preferences(quiet_hours=NIGHT, has_push_device=True)
    assert run(prefs=prefs, now=NOW).sends("push")


def test_low_priority_digest_is_not_held_by_quiet_hours() -> None:
    prefs = Preferences(quiet_hours=NIGHT, email="a@b.c")
    assert run("low", prefs=prefs, now=AT_NIGHT).action("email") is Action.DIGEST


LIMITED = Verdict(False, 120.0, 0)


@pytest.mark.parametrize(
    ("over_limit", "push"),
    [("defer", Action.HOLD), ("drop", Action.SKIP)],
)
def test_rate_limits(over_limit: str, push: Action) -> None:
    p = run(
        rates={"email": LIMITED, "push": LIMITED},
        config=Config(over_limit={"push": over_limit, "email": over_limit}),
    )
    assert p.action("email") is Action.DIGEST
    assert p.decision("email").reason == "rate limited: to the digest"
    assert p.action("push") is push
    if push is Action.HOLD:
        assert p.decision("push").until == NOW + timedelta(seconds=120)
    assert p.sends("inapp")


def test_an_allowed_verdict_changes_nothing() -> None:
    assert run(rates={"push": Verdict(True, 0.0, 3)}).sends("push")


def test_every_channel_has_exactly_one_decision_with_a_reason() -> None:
    for priority in ("high", "normal", "low"):
        for online in (True, False):
            p = run(priority, online=online)
            assert sorted(d.channel for d in p.decisions) == sorted(
                ["inapp", "email", "sms", "push", "webpush", "webhook"]
            )
            assert all(d.reason for d in p.decisions)


def test_a_named_channel_still_obeys_quiet_hours_and_rate_limits() -> None:
    prefs = Preferences(quiet_hours=NIGHT, email="a@b.c", has_push_device=True)
    quiet = run(online=True, prefs=prefs, channels=["email"], now=AT_NIGHT).decision("email")
    assert (quiet.action, quiet.until) == (Action.HOLD, MORNING)
    limited = run(
        online=True, channels=["email", "push"], rates={"email": LIMITED, "push": LIMITED}
    )
    assert limited.action("email") is Action.DIGEST
    assert limited.decision("push").reason == "rate limited"
