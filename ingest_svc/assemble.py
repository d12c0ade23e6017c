"""IngestService from a node's backends: the group-committing core and topic fan-out."""

from __future__ import annotations

from ingest_svc import service
from ingest_svc.client import LocalIngest
from ingest_svc.core import Ingest
from ingest_svc.topics import TopicSends
from notify_core.db.engine import Database
from notify_core.parts import Parts
from notify_core.queue.base import WorkQueue


async def assemble(database: Database, queue: WorkQueue) -> tuple[Parts, LocalIngest]:
    """The service's parts, and the in-process client the node's edge sends through."""
    ingest = Ingest(database, queue)
    await ingest.start()
    topics = TopicSends(database, queue)
    parts = Parts(
        specs=[service.spec(ingest, topics)], tasks={"fanout": topics.run}, closers=[ingest]
    )
    return parts, LocalIngest(ingest, topics)
