"""A batch's routing without I/O: the rate-limit questions a batch raises, the answers
applied under each over-limit policy, and the delivery status of each decision."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from datetime import time, timedelta
from pathlib import Path

import pytest

from notify_core.ratelimit import Verdict
from router_svc.batch import (
    Batch,
    HeldDelivery,
    Notification,
    Question,
    release,
    route,
    settle,
    status_of,
)
from router_svc.plan import Action, Config, Decision, Earlier, Facts, Preferences, plan
from router_svc.quiet_hours import QuietHours
from tests.support.plans import EVERYTHING, NOW

QUIET = Preferences(
    switches=EVERYTHING.switches,
    email="a@example.com",
    has_push_device=True,
    quiet_hours=QuietHours(time(11, 0), time(13, 0), "UTC"),
)
INAPP_ONLY = Preferences(switches={"inapp": True, "email": False, "push": False})
GRANTED = Verdict(True, 0.0, 5)
REFUSED = Verdict(False, 90.0, 0)
DEFER = Config()
DROP = Config(over_limit={c: "drop" for c in ("inapp", "sms", "push", "webpush", "webhook")})


def note(
    id_: str,
    user: str = "u1",
    *,
    priority: str = "normal",
    channels: Sequence[str] | None = None,
    group_key: str | None = None,
    age: float = 0.0,
    type_: str = "comment",
) -> Notification:
    return Notification(
        id=id_,
        user_id=user,
        type=type_,
        priority=priority,
        channels=None if channels is None else tuple(channels),
        group_key=group_key,
        created_at=NOW - timedelta(seconds=age),
        title="t",
        message="m",
        data=None,
    )


def batch(
    *notifications: Notification,
    prefs: Preferences = EVERYTHING,
    online: bool = False,
    heads: dict[tuple[str, str, str], Earlier] | None = None,
) -> Batch:
    users = {n.user_id for n in notifications}
    return Batch(
        notifications=notifications,
        preferences={u: prefs for u in users},
        online={u: online for u in users},
        heads=heads or {},
        now=NOW,
    )


def asked(questions: Sequence[Question]) -> list[str]:
    return [f"{q.ref}/{q.user_id}/{q.type}/{q.channel}" for q in questions]


@pytest.mark.parametrize(
    ("b", "expected"),
    [
        pytest.param(
            batch(note("n1")),
            [
                "n1/u1/comment/inapp",
                "n1/u1/comment/email",
                "n1/u1/comment/push",
                "n1/u1/comment/webpush",
                "n1/u1/comment/webhook",
            ],
            id="normal offline: every send asks",
        ),
        pytest.param(
            batch(note("n1", priority="low"), online=True),
            ["n1/u1/comment/inapp", "n1/u1/comment/webhook"],
            id="low: the digested email asks nothing",
        ),
        pytest.param(
            batch(note("n1", channels=["sms"]), online=True),
            ["n1/u1/comment/sms"],
            id="requested channels only",
        ),
        pytest.param(
            batch(note("n1"), prefs=QUIET),
            ["n1/u1/comment/inapp"],
            id="quiet hours: held channels ask nothing",
        ),
        pytest.param(
            batch(note("n1", "u2"), note("n2", "u1", age=10), prefs=INAPP_ONLY),
            ["n2/u1/comment/inapp", "n1/u2/comment/inapp"],
            id="oldest first",
        ),
        pytest.param(
            batch(
                note("n1", group_key="g", age=10),
                note("n2", group_key="g"),
                prefs=INAPP_ONLY,
            ),
            ["n1/u1/comment/inapp"],
            id="merged into an earlier one of the batch: no send, no question",
        ),
        pytest.param(
            batch(
                note("n1", group_key="g"),
                prefs=INAPP_ONLY,
                heads={("u1", "comment", "g"): Earlier("old", NOW - timedelta(minutes=5))},
            ),
            [],
            id="merged into a stored head",
        ),
        pytest.param(
            batch(
                note("n1", group_key="g"),
                prefs=INAPP_ONLY,
                heads={("u1", "comment", "g"): Earlier("old", NOW - timedelta(hours=2))},
            ),
            ["n1/u1/comment/inapp"],
            id="head outside the window: a fresh entry",
        ),
    ],
)
def test_questions_are_the_sends_of_the_batch(b: Batch, expected: list[str]) -> None:
    assert asked(route(b, DEFER).questions) == expected


def test_a_group_merges_into_the_first_of_the_batch_in_the_inbox() -> None:
    pending = route(
        batch(note("n2", group_key="g"), note("n1", group_key="g", age=10), prefs=INAPP_ONLY),
        DEFER,
    )
    assert pending.plans["n1"].sends("inapp")
    assert pending.plans["n2"].merge_into() == "n1"


@pytest.mark.parametrize(
    ("config", "channel", "expected"),
    [
        (DEFER, "email", Decision("email", Action.DIGEST, "rate limited: to the digest")),
        (DROP, "email", Decision("email", Action.DIGEST, "rate limited: to the digest")),
        (
            DEFER,
            "push",
            Decision("push", Action.HOLD, "rate limited", until=NOW + timedelta(seconds=90)),
        ),
        (DROP, "push", Decision("push", Action.SKIP, "rate limited: dropped")),
        (
            DEFER,
            "inapp",
            Decision("inapp", Action.HOLD, "rate limited", until=NOW + timedelta(seconds=90)),
        ),
        (DROP, "inapp", Decision("inapp", Action.SKIP, "rate limited: dropped")),
    ],
)
def test_a_refused_send_takes_the_over_limit_policy(
    config: Config, channel: str, expected: Decision
) -> None:
    pending = route(batch(note("n1")), config)
    answers = [REFUSED if q.channel == channel else GRANTED for q in pending.questions]
    settled = settle(pending, answers)["n1"]
    assert settled.decision(channel) == expected
    for d in settled.decisions:
        if d.channel != channel:
            assert d == pending.plans["n1"].decision(d.channel)


def test_granted_answers_leave_the_plans_as_they_were() -> None:
    pending = route(batch(note("n1"), note("n2", "u2", priority="high")), DEFER)
    assert settle(pending, [GRANTED] * len(pending.questions)) == pending.plans


def test_answers_must_match_the_questions() -> None:
    pending = route(batch(note("n1")), DEFER)
    with pytest.raises(ValueError):
        settle(pending, [GRANTED])


@pytest.mark.parametrize("config", [DEFER, DROP], ids=["defer", "drop"])
@pytest.mark.parametrize("refused", ["inapp", "email", "push", "webpush", "webhook"])
def test_settling_equals_planning_with_the_refusals(config: Config, refused: str) -> None:
    n = note("n1")
    pending = route(batch(n), config)
    answers = [REFUSED if q.channel == refused else GRANTED for q in pending.questions]
    direct = plan(
        Facts(n.type, n.priority, n.channels, n.group_key),
        EVERYTHING,
        online=False,
        earlier=None,
        rates={refused: REFUSED},
        now=NOW,
        config=config,
    )
    assert settle(pending, answers)["n1"] == direct


def held(channel: str, reason: str | None = "quiet hours", id_: str = "d1") -> HeldDelivery:
    return HeldDelivery(id_, channel, {} if reason is None else {"reason": reason}, note("n1"))


@pytest.mark.parametrize(
    ("prefs", "channel", "refusal", "config", "expected"),
    [
        (
            EVERYTHING,
            "push",
            False,
            DEFER,
            Decision("push", Action.SEND, "released after quiet hours"),
        ),
        (
            EVERYTHING,
            "push",
            True,
            DEFER,
            Decision("push", Action.HOLD, "rate limited", until=NOW + timedelta(seconds=90)),
        ),
        (EVERYTHING, "push", True, DROP, Decision("push", Action.SKIP, "rate limited: dropped")),
        (
            EVERYTHING,
            "email",
            True,
            DROP,
            Decision("email", Action.DIGEST, "rate limited: to the digest"),
        ),
    ],
)
def test_released_deliveries_ask_and_settle(
    prefs: Preferences, channel: str, refusal: bool, config: Config, expected: Decision
) -> None:
    pending = release([held(channel)], {"u1": prefs}, NOW, config)
    assert asked(pending.questions) == [f"d1/u1/comment/{channel}"]
    settled = settle(pending, [REFUSED if refusal else GRANTED])
    assert settled["d1"].decisions == (expected,)


@pytest.mark.parametrize(
    ("prefs", "expected"),
    [
        (INAPP_ONLY, Decision("push", Action.SKIP, "switched off by the user")),
        (QUIET, Decision("push", Action.HOLD, "quiet hours", until=NOW + timedelta(hours=1))),
    ],
)
def test_released_deliveries_not_sent_ask_nothing(prefs: Preferences, expected: Decision) -> None:
    pending = release([held("push")], {"u1": prefs}, NOW, DEFER)
    assert pending.questions == ()
    assert settle(pending, [])["d1"].decisions == (expected,)


def test_a_release_without_a_recorded_reason_reads_held() -> None:
    pending = release([held("push", None)], {"u1": EVERYTHING}, NOW, DEFER)
    assert pending.plans["d1"].decision("push").reason == "released after held"


@pytest.mark.parametrize(
    ("decision", "status"),
    [
        (Decision("inapp", Action.SEND, "r"), "delivered"),
        (Decision("email", Action.SEND, "r"), "pending"),
        (Decision("push", Action.SEND, "r"), "pending"),
        (Decision("push", Action.HOLD, "r", until=NOW), "held"),
        (Decision("inapp", Action.MERGE, "r", merge_into="x"), "merged"),
        (Decision("email", Action.DIGEST, "r"), "digested"),
        (Decision("sms", Action.SKIP, "r"), "skipped"),
    ],
)
def test_status_of_each_decision(decision: Decision, status: str) -> None:
    assert status_of(decision) == status


@pytest.mark.parametrize("module", ["batch.py", "plan.py", "quiet_hours.py"])
def test_the_core_does_no_io(module: str) -> None:
    source = (Path(__file__).parents[2] / "router_svc" / module).read_text()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "sqlalchemy", "grpc", "redis", "aio_pika", "psycopg"}
