"""The router's typed application keys (the shared ones are in ``awasi.web.keys``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from awasi.catalog import Catalog
from awasi.db.listen import Notifications
from awasi.i18n import Catalogs
from services.router.live import KnownTags

if TYPE_CHECKING:
    from services.router.attachments import AttachmentChecker

CATALOG = web.AppKey("catalog", Catalog)
MESSAGES = web.AppKey("messages", Catalogs)
HTTP = web.AppKey("http", aiohttp.ClientSession)
# The clock; tests may pass another. Returns an aware UTC datetime.
CLOCK = web.AppKey("clock", Callable[[], datetime])
# Changes to agencies' queues (NOTIFY router_queue), for the long-polls.
QUEUE_CHANGES = web.AppKey("queue_changes", Notifications)
QUEUE_TAGS = web.AppKey("queue_tags", KnownTags)
# Whether the database has pg_trgm (the desk search then also matches inside words).
TRIGRAM = web.AppKey("trigram", bool)
# Checks staff's attachments (PDF parsing, image re-encoding) off the event loop.
ATTACHMENTS: web.AppKey[AttachmentChecker] = web.AppKey("attachments")
