"""The intake service's app factory: JSON API, web form and status pages, Open311,
the consumer of the router's and oversight's events, and the outbox relay."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import Counter

from awasi.catalog import load_catalog
from awasi.events import topics
from awasi.events.consumer import Handler
from awasi.events.envelope import Envelope
from awasi.i18n import Catalogs
from awasi.settings import Settings
from awasi.web import keys
from awasi.web.app import (
    background,
    consumer,
    create_base_app,
    database,
    producer_ctx,
    relay,
    schema_migrations,
)
from services.intake import (
    api,
    mail,
    open311,
    pages,
    participation_web,
    reports,
    survey,
    telegram,
)
from services.intake import consumer as intake_consumer
from services.intake import keys as ikeys
from services.intake.batch import SubmitBatcher
from services.intake.device import device_middleware
from services.intake.participation import SupportLimiter
from services.intake.photos import PhotoCleaner, configure_pillow
from services.intake.ratelimit import SubmissionLimiter

SCHEMA = "intake"
MIGRATIONS = "services.intake.migrations"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def migrations() -> list[Any]:
    return schema_migrations(MIGRATIONS)


async def batcher_ctx(app: web.Application) -> AsyncIterator[None]:
    """Group commit of submissions, for the app's lifetime (needs the pool)."""
    batcher = SubmitBatcher(app[keys.POOL])
    app[ikeys.BATCHER] = batcher
    async with background(batcher.run(), "intake-batcher", app):
        yield


async def photos_ctx(app: web.Application) -> AsyncIterator[None]:
    """The photo re-encoding pool, for the app's lifetime (the bot uses it too)."""
    configure_pillow()
    cleaner = PhotoCleaner()
    app[ikeys.PHOTOS] = cleaner
    try:
        yield
    finally:
        cleaner.close()


# What intake's consumer reads, and how it applies it: the app and the demo history
# (awasi/demo_history.py) wire the same.
TOPICS_READ = (topics.ROUTER, topics.OVERSIGHT)


def event_handling(settings: Settings) -> tuple[Handler, Callable[[Envelope], bool]]:
    """The consumer's handler (e-mail queued only when SMTP is set) and its filter."""
    return (functools.partial(intake_consumer.handle, mail=settings.smtp() is not None),
            intake_consumer.accepts)


def create_app(settings: Settings) -> web.Application:
    # Multipart uploads (up to three photos) may be larger than a JSON body; JSON
    # bodies are held to max_request_bytes by the handlers themselves.
    app = create_base_app(settings, "intake", title="Awasi intake",
                          max_body=max(settings.max_upload_bytes, settings.max_request_bytes),
                          middlewares=(device_middleware,))
    app[ikeys.CATALOG] = load_catalog(settings.catalog)
    app[ikeys.MESSAGES] = Catalogs(LOCALE_DIR)
    app[ikeys.LIMITER] = SubmissionLimiter(settings.rate_limit_per_minute,
                                           settings.rate_limit_per_address_per_minute)
    # Survey answers have their own, lower budget (a separate counter store).
    app[ikeys.SURVEY_LIMITER] = SubmissionLimiter(settings.survey_rate_limit_per_minute,
                                                  settings.rate_limit_per_address_per_minute)
    app[ikeys.SUPPORT_LIMITER] = SupportLimiter(settings.support_rate_limit_per_minute,
                                                settings.support_address_rate_limit_per_minute)
    app[ikeys.SUBMITTED] = Counter("awasi_intake_complaints_total", "Complaints accepted",
                                   ["channel"], registry=app[keys.REGISTRY])
    app.cleanup_ctx.extend([
        photos_ctx,
        database(SCHEMA, migrations()),
        participation_web.trigram_ctx,
        producer_ctx,
        relay(SCHEMA),
        batcher_ctx,
        consumer("intake", SCHEMA, TOPICS_READ, *event_handling(settings)),
    ])
    api.setup(app)
    open311.setup(app)
    pages.setup(app)
    reports.setup(app)
    survey.setup(app)
    participation_web.setup(app)
    telegram.setup(app)
    mail.setup(app)
    return app
