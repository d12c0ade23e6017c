"""DigestService from a node's backends and its settings: runner and scheduler.

A run renders each digest and hands it to the delivery queue ``deliver.digest.low``; the
delivery service's digest worker sends it through the node's email providers (see
:mod:`delivery_svc.digests`), so this service opens no provider of its own."""

from __future__ import annotations

from dataclasses import dataclass

from delivery_svc.api import EmailSettings
from digest_svc import service
from digest_svc.config_digest import DigestSettings
from digest_svc.runner import DigestRunner
from digest_svc.scheduler import DigestService
from notify_core.cache.base import CacheBackends
from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.parts import Parts
from notify_core.queue.base import WorkQueue
from template_svc.api import Templates


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """What a DigestService is built from: the core settings, the email settings (the
    sender address the digests are rendered with) and the digests' own."""

    settings: Settings
    email: EmailSettings
    digest: DigestSettings


def build_digest_service(
    config: DigestConfig,
    database: Database,
    queue: WorkQueue,
    backends: CacheBackends,
    templates: Templates,
    public_url: str | None,
) -> DigestService:
    """The node's DigestService, handing its digests to ``queue``."""
    settings = config.settings
    runner = DigestRunner(
        database,
        backends,
        settings.namespace,
        queue,
        email_from=config.email.sender,
        settings=config.digest,
        rates=settings.rate_limits,
        templates=templates,
        signing_secret=settings.signing_secret,
        public_url=public_url,
    )
    return DigestService(database, runner, config.digest)


def assemble(
    config: DigestConfig,
    database: Database,
    queue: WorkQueue,
    backends: CacheBackends,
    templates: Templates,
    public_url: str | None,
) -> tuple[Parts, DigestService]:
    """The service's parts, and the DigestService (which tests drive)."""
    digest = build_digest_service(config, database, queue, backends, templates, public_url)
    parts = Parts(specs=[service.spec(database, digest)], tasks={"digest": digest.run})
    return parts, digest
