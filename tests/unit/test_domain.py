"""The domain vocabulary: stored strings, and the delivery status moves as a table."""

from __future__ import annotations

import pytest
from notify.v1 import common_pb2

from notify_core.domain import (
    CHANNELS,
    DEFAULT_SWITCHES,
    DELIVERY_CHANNELS,
    PRIORITIES,
    Channel,
    DeliveryEvent,
    DeliveryStatus,
    DigestRunStatus,
    IllegalTransition,
    NotificationState,
    Priority,
    advance,
    shown_status,
    sources,
    target,
)

S = DeliveryStatus
E = DeliveryEvent

ALLOWED = [
    # the delivery worker
    (S.PENDING, E.CLAIMED, S.SENDING),
    (S.RETRYING, E.CLAIMED, S.SENDING),
    (S.SENDING, E.CLAIMED, S.SENDING),  # its lease lapsed
    (S.SENDING, E.SENT, S.SENT),
    (S.SENDING, E.RETRY, S.RETRYING),
    (S.SENDING, E.GAVE_UP, S.FAILED),
    # dead letters
    (S.FAILED, E.REQUEUED, S.PENDING),
    # provider events, our own pixel and links
    (S.SENT, E.ARRIVED, S.DELIVERED),
    (S.SENT, E.OPENED, S.OPENED),
    (S.DELIVERED, E.OPENED, S.OPENED),
    (S.SENT, E.CLICKED, S.CLICKED),
    (S.DELIVERED, E.CLICKED, S.CLICKED),
    (S.OPENED, E.CLICKED, S.CLICKED),
    (S.SENT, E.BOUNCED, S.BOUNCED),
    (S.DELIVERED, E.BOUNCED, S.BOUNCED),
    (S.SENT, E.DROPPED, S.FAILED),
    (S.DELIVERED, E.DROPPED, S.FAILED),
    # the router releasing a held delivery
    (S.HELD, E.RELEASED_TO_SEND, S.PENDING),
    (S.HELD, E.RELEASED_TO_INBOX, S.DELIVERED),
    (S.HELD, E.HELD_AGAIN, S.HELD),
    (S.HELD, E.RELEASED_TO_MERGE, S.MERGED),
    (S.HELD, E.RELEASED_TO_DIGEST, S.DIGESTED),
    (S.HELD, E.RELEASED_TO_SKIP, S.SKIPPED),
    # digests
    (S.DIGESTED, E.DIGEST_SENT, S.DIGEST_SENT),
    (S.DIGESTED, E.DIGEST_DROPPED, S.SKIPPED),
]


@pytest.mark.parametrize(("current", "event", "after"), ALLOWED)
def test_every_allowed_move(current: S, event: E, after: S) -> None:
    assert advance(current, event) is after
    assert advance(current.value, event) is after  # a status read from a row
    assert current in sources(event) and target(event) is after


def test_the_table_allows_exactly_these_moves() -> None:
    every = {(c, e) for e in E for c in sources(e)}
    assert every == {(c, e) for c, e, _ in ALLOWED}
    assert len(ALLOWED) == len(every)


@pytest.mark.parametrize(
    ("current", "event"),
    [
        (S.SENT, E.CLAIMED),  # sent once is sent
        (S.FAILED, E.CLAIMED),  # a dead letter waits for a requeue
        (S.HELD, E.CLAIMED),  # held rows are the router's
        (S.PENDING, E.SENT),
        (S.RETRYING, E.GAVE_UP),
        (S.PENDING, E.REQUEUED),
        (S.DELIVERED, E.ARRIVED),
        (S.OPENED, E.ARRIVED),
        (S.CLICKED, E.OPENED),  # forward only
        (S.OPENED, E.BOUNCED),  # someone read it
        (S.CLICKED, E.DROPPED),
        (S.PENDING, E.OPENED),
        (S.BOUNCED, E.CLICKED),
        (S.PENDING, E.RELEASED_TO_SEND),
        (S.SKIPPED, E.RELEASED_TO_INBOX),
        (S.PENDING, E.DIGEST_SENT),
        (S.DIGEST_SENT, E.DIGEST_DROPPED),
        (S.MERGED, E.RELEASED_TO_SEND),
    ],
)
def test_a_refused_move_raises(current: S, event: E) -> None:
    with pytest.raises(IllegalTransition, match=f"a {current} delivery cannot be {event}"):
        advance(current, event)


def test_the_values_are_the_stored_strings() -> None:
    assert [c.value for c in CHANNELS] == ["inapp", "email", "sms", "push", "webpush", "webhook"]
    assert DELIVERY_CHANNELS == ("email", "webhook", "push", "webpush", "sms")
    assert [p.value for p in PRIORITIES] == ["high", "normal", "low"]
    assert {p: p.queue_priority for p in Priority} == {"low": 0, "normal": 1, "high": 2}
    assert {s.value for s in NotificationState} == {"scheduled", "accepted", "routed", "merged"}
    assert {s.value for s in DeliveryStatus} == {
        "pending", "sending", "sent", "retrying", "failed", "delivered", "opened", "clicked",
        "bounced", "held", "merged", "digested", "digest_sent", "skipped",
    }  # fmt: skip
    assert [s.value for s in DigestRunStatus] == ["queued", "running", "succeeded", "failed"]
    assert f"deliver.{Channel.EMAIL}.{Priority.HIGH}" == "deliver.email.high"


def test_every_channel_and_priority_has_its_protobuf_value() -> None:
    for channel in Channel:
        assert common_pb2.Channel.Value(f"CHANNEL_{channel.upper()}")
    for priority in Priority:
        assert common_pb2.Priority.Value(f"PRIORITY_{priority.upper()}")


def test_default_switches_cover_every_channel_and_sms_is_opt_in() -> None:
    assert set(DEFAULT_SWITCHES) == set(CHANNELS)
    assert [c for c, on in DEFAULT_SWITCHES.items() if not on] == ["sms"]


DIGEST_STATES = [None, "pending", "sending", "retrying", "sent", "failed"]
"""A carrying digest's statuses (None: no digest carries the delivery)."""


@pytest.mark.parametrize("digest", DIGEST_STATES)
@pytest.mark.parametrize("status", list(DeliveryStatus))
def test_a_put_aside_email_reads_digest_sent_only_once_its_digest_is_sent(
    status: DeliveryStatus, digest: str | None
) -> None:
    carried_and_sent = status == S.DIGESTED and digest == "sent"
    assert shown_status(status, digest) == (S.DIGEST_SENT if carried_and_sent else status)
