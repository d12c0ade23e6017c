"""Routing jobs: one job per priority and per ``ROUTE_JOB_IDS`` notifications, and the
router reads both the batched form and the one-id form of earlier versions."""

from __future__ import annotations

import json
import logging

from ingest_svc.core import route_messages
from notify_core.constants import ROUTE_JOB_IDS
from notify_core.domain import Priority
from notify_core.queue.base import Delivery, job_ids

log = logging.getLogger(__name__)


def delivery(body: bytes) -> Delivery:
    return Delivery(body=body, priority=0, tag=0)


def test_jobs_are_one_per_priority_and_per_chunk_of_ids() -> None:
    pairs = [(f"n{i}", Priority.NORMAL) for i in range(ROUTE_JOB_IDS + 5)]
    pairs += [("h1", Priority.HIGH), ("h2", Priority.HIGH)]
    messages = route_messages(pairs)
    bodies = [json.loads(m.body) for m in messages]
    assert [len(b["ids"]) for b in bodies] == [ROUTE_JOB_IDS, 5, 2]
    assert [m.priority for m in messages] == [
        Priority.NORMAL.queue_priority,
        Priority.NORMAL.queue_priority,
        Priority.HIGH.queue_priority,
    ]
    assert [i for b in bodies for i in b["ids"]] == [nid for nid, _ in pairs]


def test_no_notifications_no_jobs() -> None:
    assert route_messages([]) == []


def test_job_ids_reads_both_forms_and_drops_malformed_jobs() -> None:
    batch = [
        delivery(b'{"ids": ["a", "b"]}'),
        delivery(b'{"id": "c"}'),
        delivery(b'{"ids": "not-a-list"}'),
        delivery(b"not json"),
        delivery(b'{"other": 1}'),
        delivery(b'{"ids": ["d"]}'),
    ]
    assert job_ids(batch, log) == ["a", "b", "c", "d"]
