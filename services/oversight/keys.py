"""Typed app keys of the oversight service."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from awasi.catalog import Catalog
from awasi.i18n import Catalogs
from awasi.web.page_cache import PageCache
from services.oversight.audit_key import SigningKey
from services.oversight.clock import Clock

CATALOG = web.AppKey("oversight_catalog", Catalog)
CLOCK = web.AppKey("oversight_clock", Clock)  # type: ignore[type-abstract]
MESSAGES = web.AppKey("oversight_messages", Catalogs)
SIGNING_KEY = web.AppKey("oversight_signing_key", SigningKey)
ROUTER_HTTP = web.AppKey("oversight_router_http", aiohttp.ClientSession)
# Rendered public pages by the data they show (the dashboard, live reports).
PAGES = web.AppKey("oversight_pages", PageCache)
