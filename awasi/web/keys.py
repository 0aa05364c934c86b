"""Typed application keys shared by every service app."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer
from aiohttp import web
from prometheus_client import CollectorRegistry

from awasi.settings import Settings
from awasi.web.openapi import OpenApi

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", str)
POOL = web.AppKey("pool", asyncpg.Pool)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
REGISTRY = web.AppKey("registry", CollectorRegistry)
OPENAPI = web.AppKey("openapi", OpenApi)
SHUTTING_DOWN = web.AppKey("shutting_down", list)

