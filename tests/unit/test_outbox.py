"""The queue every live connection shares (realtime_svc.outbox) and the SSE framing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from notify_core.convert import live_event, live_event_id, row_to_json
from realtime_svc.outbox import Outbox
from realtime_svc.sse import sse_event


class Recorder(Outbox):
    """An outbox whose writes are kept; queued frames are taken by the test."""

    def __init__(self, limit: int) -> None:
        super().__init__("u1", "h.c1", queue_limit=limit)
        self.written: list[bytes] = []
        self.wakes = 0
        self.overflows = 0

    async def write(self, payload: bytes) -> None:
        self.written.append(payload)

    def _wake(self) -> None:
        self.wakes += 1

    def _overflowed(self) -> None:
        self.overflows += 1

    def queued(self) -> list[bytes]:
        frames = []
        while (frame := self.take()) is not None:
            frames.append(frame)
        return frames


def row(nid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": nid,
        "user_id": "u1",
        "type": "comment",
        "title": "t",
        "message": "m",
        "data": {"id": "not-this"},
        "priority": "normal",
        "read": False,
        "created_at": datetime(2025, 1, 2, tzinfo=UTC),
        **extra,
    }


def event(nid: str, kind: str = "notification") -> bytes:
    return live_event(row_to_json(row(nid)), kind)


async def test_frames_wait_for_the_opening_and_its_notifications_come_once() -> None:
    box = Recorder(limit=10)
    box.offer(event("a"))
    box.offer(event("a", "notification_updated"))
    box.offer(event("b"))
    assert box.take() is None and box.wakes == 0
    await box.open([b'{"type":"resumed"}', event("a")], {"a"})
    assert box.written == [b'{"type":"resumed"}', event("a")]
    assert box.queued() == [event("a", "notification_updated"), event("b")]
    box.offer(event("a"))  # published after the opening read it: still a repeat
    box.offer(event("c"))
    assert box.queued() == [event("c")]
    assert box.overflows == 0 and not box.closed


async def test_overflow_drops_the_connection_and_everything_queued() -> None:
    box = Recorder(limit=2)
    await box.open([], set())
    for nid in "abc":
        box.offer(event(nid))
    assert box.overflows == 1 and box.closed and box.overflowed
    assert box.take() is None
    box.offer(event("d"))
    assert box.take() is None and box.overflows == 1


async def test_frames_piling_up_during_the_opening_count_against_the_limit() -> None:
    box = Recorder(limit=2)
    for nid in "abc":
        box.offer(event(nid))
    assert box.overflows == 1 and box.closed
    await box.open([b"first"], set())
    assert box.written == [] and box.take() is None


def test_live_event_id_reads_only_notification_frames() -> None:
    assert live_event_id(event("n-1")) == "n-1"
    assert live_event_id(event("n-1", "notification_updated")) is None
    assert live_event_id(b'{"type":"pending","notifications":[]}') is None
    assert live_event_id(b'{"type":"notification","notification":{"id":"') is None


def test_sse_events_carry_the_notification_id_and_one_data_line() -> None:
    frame = live_event(row_to_json(row("n-1", message="two\nlines")))
    text = sse_event(frame).decode()
    assert text.startswith("id: n-1\ndata: ")
    assert text.endswith("\n\n") and text.count("\n") == 3
    assert json.loads(text.split("data: ", 1)[1])["notification"]["message"] == "two\nlines"
    assert sse_event(b'{"type":"resync","unread_count":3}') == (
        b'data: {"type":"resync","unread_count":3}\n\n'
    )
