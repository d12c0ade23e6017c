"""DigestService from a node's backends and its settings: providers, runner, scheduler."""

from __future__ import annotations

from dataclasses import dataclass

from delivery_svc.api import EmailSettings, FailoverEmail, create_email_providers
from digest_svc import service
from digest_svc.config_digest import DigestSettings
from digest_svc.runner import DigestRunner
from digest_svc.scheduler import DigestService
from notify_core.cache.base import CacheBackends
from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.parts import Parts
from template_svc.api import Templates


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """What a DigestService is built from: the core settings, the email providers' and the
    digests' own."""

    settings: Settings
    email: EmailSettings
    digest: DigestSettings


def build_digest_service(
    config: DigestConfig,
    database: Database,
    backends: CacheBackends,
    templates: Templates,
    public_url: str | None,
) -> tuple[DigestService, FailoverEmail]:
    """The node's DigestService, and its email providers to close when the node stops.

    Digests have providers of their own (the same configuration as the delivery workers',
    another SMTP pool and other breakers): a run's burst of digests does not hold back the
    transactional email of the delivery workers."""
    settings = config.settings
    primary, fallback = create_email_providers(config.email)
    email = FailoverEmail(
        primary, fallback, threshold=settings.breaker_threshold, reset=settings.breaker_reset
    )
    runner = DigestRunner(
        database,
        backends,
        settings.namespace,
        email,
        email_from=config.email.sender,
        settings=config.digest,
        rates=settings.rate_limits,
        templates=templates,
        signing_secret=settings.signing_secret,
        public_url=public_url,
    )
    return DigestService(database, runner, config.digest), email


def assemble(
    config: DigestConfig,
    database: Database,
    backends: CacheBackends,
    templates: Templates,
    public_url: str | None,
) -> tuple[Parts, DigestService]:
    """The service's parts, and the DigestService (which tests drive)."""
    digest, email = build_digest_service(config, database, backends, templates, public_url)
    parts = Parts(
        specs=[service.spec(database, digest)], tasks={"digest": digest.run}, closers=[email]
    )
    return parts, digest
