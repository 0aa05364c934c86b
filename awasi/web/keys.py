"""Typed application keys shared by every service app."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry

from awasi.settings import Settings
from awasi.web.openapi import OpenApi

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", str)
POOL = web.AppKey("pool", asyncpg.Pool)
# Background work (outbox relay, consumers, schedulers) uses its own pool: web
# requests can hold every connection of POOL without stalling escalations.
BACKGROUND_POOL = web.AppKey("background_pool", asyncpg.Pool)
KAFKA = web.AppKey("kafka", Any)  # awasi.web.app.KafkaLink (typed loosely: no import cycle)
REGISTRY = web.AppKey("registry", CollectorRegistry)
OPENAPI = web.AppKey("openapi", OpenApi)
SHUTTING_DOWN = web.AppKey("shutting_down", list)
# The service's long-running loops (consumers, relay, scheduler...): /readyz answers 503
# once one of them has stopped, instead of a service that looks fine doing nothing.
BACKGROUND = web.AppKey("background", list)

# The service's OpenTelemetry provider (awasi/tracing.py): the process's global one
# (no-op unless OTEL_* configure export); tests put an in-memory one here.
TRACER_PROVIDER = web.AppKey("tracer_provider", Any)
