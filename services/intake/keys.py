"""Typed application keys of the intake app (the shared ones are in ``awasi.web.keys``)."""

from __future__ import annotations

import jinja2
from aiohttp import web
from prometheus_client import Counter

from awasi.catalog import Catalog
from awasi.i18n import Catalogs
from services.intake.batch import SubmitBatcher
from services.intake.participation import SupportLimiter
from services.intake.photos import PhotoCleaner
from services.intake.ratelimit import SubmissionLimiter

CATALOG = web.AppKey("intake.catalog", Catalog)
MESSAGES = web.AppKey("intake.messages", Catalogs)
LIMITER = web.AppKey("intake.limiter", SubmissionLimiter)
SURVEY_LIMITER = web.AppKey("intake.survey_limiter", SubmissionLimiter)
BATCHER = web.AppKey("intake.batcher", SubmitBatcher)
JINJA = web.AppKey("intake.jinja", jinja2.Environment)
SUBMITTED = web.AppKey("intake.submitted", Counter)
PHOTOS = web.AppKey("intake.photos", PhotoCleaner)
SUPPORT_LIMITER = web.AppKey("intake.support_limiter", SupportLimiter)
# Whether the database has pg_trgm (similar reports by trigrams, else full text).
TRIGRAM = web.AppKey("intake.trigram", bool)
