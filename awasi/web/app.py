"""The base application every service builds on: middlewares, health, readiness,
metrics and the OpenAPI document; plus the shared resource contexts (pool with
migrations, producer, relay, consumers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from awasi import tracing
from awasi.db import create_pool, load_migrations, migrate_schema
from awasi.events.asyncapi import SERVICE_TOPICS, service_document
from awasi.events.consumer import ConsumerMetrics, Handler, IdempotentConsumer, Prepare
from awasi.events.envelope import Envelope
from awasi.events.kafka import make_consumer, make_producer
from awasi.events.relay import OutboxRelay, RelayMetrics
from awasi.events.topics import ensure_topics
from awasi.settings import Settings
from awasi.web import keys
from awasi.web.errors import error_middleware
from awasi.web.headers import add_security_headers
from awasi.web.openapi import OpenApi
from awasi.web.proxies import TrustedProxies
from awasi.web.responses import json_response
from awasi.web.tracing import tracing_middleware

log = logging.getLogger(__name__)

BACKBONE_MIGRATIONS = "awasi.events.migrations"


def schema_migrations(*packages: str) -> list[Any]:
    """The backbone's migrations (0001, 0800) followed by the service's own (whose
    numbers never collide with the backbone's)."""
    return [m for p in (BACKBONE_MIGRATIONS, *packages) for m in load_migrations(p)]


def create_base_app(
    settings: Settings, service: str, *, title: str, max_body: int | None = None,
    middlewares: tuple[Any, ...] = (),
) -> web.Application:
    """An app with the error middleware, request metrics, size limit, the real client
    behind trusted proxies (``AWASI_TRUSTED_PROXIES``), the security headers on every
    response, and the ``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``
    routes."""
    registry = CollectorRegistry()
    # Tracing first: its span covers the rest, and sees the status the error
    # middleware answers.
    kit: list[Any] = [tracing_middleware, _metrics_middleware(registry), error_middleware]
    networks = settings.trusted_proxy_networks()
    if networks:
        # After the error middleware, so a malformed header gets the JSON error;
        # before the service's own, so they all see the real client and scheme.
        kit.append(TrustedProxies(networks, settings.proxy_header).middleware)
    app = web.Application(
        middlewares=[*kit, *middlewares],
        client_max_size=max_body or settings.max_request_bytes,
    )
    app.on_response_prepare.append(add_security_headers)
    app[keys.SETTINGS] = settings
    app[keys.SERVICE] = service
    # The process's provider (awasi serve configures it: awasi.tracing); no-op when
    # tracing is not configured. A collaborator tests may replace before start.
    app[keys.TRACER_PROVIDER] = trace.get_tracer_provider()
    app[keys.REGISTRY] = registry
    app[keys.SHUTTING_DOWN] = []
    app[keys.BACKGROUND] = []
    api = OpenApi(f"Awasi {service}", description=f"The {service} service of Awasi.")
    app[keys.OPENAPI] = api
    api.add(app.router, "GET", "/healthz", healthz, summary="Liveness", tags=["ops"],
            responses={200: {"type": "object"}}, errors=())
    api.add(app.router, "GET", "/readyz", readyz,
            summary="Readiness: database and broker reachable", tags=["ops"],
            responses={200: {"type": "object"}, 503: {"type": "object"}}, errors=())
    api.add(app.router, "GET", "/metrics", metrics, summary="Prometheus metrics",
            tags=["ops"], responses={200: None}, errors=())
    app.router.add_get("/openapi.json", api.handler)
    if service in SERVICE_TOPICS:
        api.add(app.router, "GET", "/asyncapi.yaml", asyncapi_yaml,
                summary="AsyncAPI 3 document of the topics this service writes",
                tags=["ops"], responses={200: None}, errors=())

    async def on_shutdown(app: web.Application) -> None:
        app[keys.SHUTTING_DOWN].append(True)

    app.on_shutdown.append(on_shutdown)
    return app


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "service": request.app[keys.SERVICE]})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    checks: dict[str, str] = {}
    ok = not app[keys.SHUTTING_DOWN]
    if keys.POOL in app:
        try:
            async with asyncio.timeout(2):
                await app[keys.POOL].fetchval("SELECT 1")
            checks["database"] = "ok"
        except Exception as e:  # noqa: BLE001 - any failure means not ready
            checks["database"] = f"error: {type(e).__name__}"
            ok = False
    if keys.KAFKA in app:
        link = app[keys.KAFKA]
        if link.producer is None:
            checks["broker"] = "connecting"
            ok = False
        else:
            try:
                async with asyncio.timeout(2):
                    # Asks the broker for metadata: fails while it is unreachable.
                    await link.producer.client.fetch_all_metadata()
                checks["broker"] = "ok"
            except Exception as e:  # noqa: BLE001
                checks["broker"] = f"error: {type(e).__name__}"
                ok = False
    for task in app.get(keys.BACKGROUND, []):
        if task.done():
            # A loop that must run for the service's lifetime has stopped.
            error = None if task.cancelled() else task.exception()
            checks[task.get_name()] = f"stopped: {type(error).__name__ if error else 'exited'}"
            ok = False
    if app[keys.SHUTTING_DOWN]:
        checks["shutdown"] = "in progress"
    return json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)


async def asyncapi_yaml(request: web.Request) -> web.Response:
    """The event document filtered to this service's topics (``awasi.events.asyncapi``);
    generated once from the models, like the checked-in docs/asyncapi.yaml."""
    return web.Response(text=service_document(request.app[keys.SERVICE]),
                        content_type="application/yaml", charset="utf-8")


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[keys.REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _metrics_middleware(registry: CollectorRegistry) -> Any:
    requests = Counter("awasi_http_requests_total", "HTTP requests",
                       ["method", "route", "status"], registry=registry)
    latency = Histogram("awasi_http_request_seconds", "HTTP request latency",
                        ["method", "route"], registry=registry)

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        start = time.perf_counter()
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        status = 500
        try:
            response = await handler(request)
        except web.HTTPException as e:
            status = e.status
            raise
        else:
            status = response.status
            return response
        finally:
            requests.labels(request.method, name, str(status)).inc()
            latency.labels(request.method, name).observe(time.perf_counter() - start)

    return middleware


# --- shared resources, each opened and closed in one cleanup_ctx generator ----------

def database(schema: str, migrations: list[Any]) -> Callable[[web.Application], Any]:
    """Open the web pool and the background pool (``keys.BACKGROUND_POOL``: relay,
    consumers, schedulers) and apply the schema's migrations before serving."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.SETTINGS]
        dsn = settings.require_database()
        pool = await create_pool(dsn, min_size=settings.db_pool_min,
                                 max_size=settings.db_pool_max)
        try:
            background_pool = await create_pool(
                dsn, min_size=min(settings.db_background_pool_min,
                                  settings.db_background_pool_max),
                max_size=settings.db_background_pool_max)
        except BaseException:
            await pool.close()
            raise
        try:
            async with background_pool.acquire() as conn:
                await migrate_schema(conn, schema, migrations)
            app[keys.POOL] = pool
            app[keys.BACKGROUND_POOL] = background_pool
            yield
        finally:
            await background_pool.close()
            await pool.close()

    return ctx


class KafkaLink:
    """The service's producer, connected in the background.

    A service must start, and intake must take complaints into its outbox, while the
    broker is unreachable: the first connection is tried once at start and then
    retried with backoff; the relay and the consumers wait for ``ready``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        self.ready = asyncio.Event()

    async def connect_once(self) -> bool:
        producer = make_producer(self.settings)
        try:
            await ensure_topics(self.settings)
            await producer.start()
        except (KafkaError, OSError) as e:
            log.warning("broker unreachable; will retry", extra={"error": repr(e)})
            await _stop_quietly(producer)
            return False
        except BaseException:
            await _stop_quietly(producer)  # cancelled while connecting
            raise
        self.producer = producer
        self.ready.set()
        return True

    async def connect(self) -> None:
        backoff = 0.2
        while not await self.connect_once():
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None


async def producer_ctx(app: web.Application) -> AsyncIterator[None]:
    link = KafkaLink(app[keys.SETTINGS])
    app[keys.KAFKA] = link
    try:
        if await link.connect_once():
            yield
        else:
            async with background(link.connect(), "kafka-connect"):
                yield
    finally:
        await link.close()


def relay(schema: str) -> Callable[[web.Application], Any]:
    """Run the outbox relay of ``schema`` for the app's lifetime (from the moment the
    broker is reachable)."""

    async def run(app: web.Application) -> None:
        tracing.bind(app[keys.TRACER_PROVIDER])
        settings = app[keys.SETTINGS]
        link = app[keys.KAFKA]
        await link.ready.wait()
        assert link.producer is not None
        await OutboxRelay(
            app[keys.BACKGROUND_POOL], link.producer, schema,
            batch_size=settings.relay_batch_size,
            poll_interval_s=settings.relay_poll_interval_s,
            retention=timedelta(days=settings.outbox_retention_days),
            metrics=RelayMetrics(app[keys.REGISTRY]),
            listen_dsn=settings.require_database(),
        ).run()

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with background(run(app), f"{schema}-relay", app):
            yield

    return ctx


def consumer(
    name: str, schema: str, topic_names: tuple[str, ...], handler: Handler,
    accepts: Callable[[Envelope], bool] = lambda _: True, prepare: Prepare | None = None,
) -> Callable[[web.Application], Any]:
    """Run an idempotent consumer in group ``awasi.<name>`` for the app's lifetime
    (from the moment the broker is reachable); ``prepare``: see ``IdempotentConsumer``."""

    async def run(app: web.Application) -> None:
        tracing.bind(app[keys.TRACER_PROVIDER])
        settings = app[keys.SETTINGS]
        link = app[keys.KAFKA]
        await link.ready.wait()
        assert link.producer is not None
        backoff = 0.2
        while True:
            kafka_consumer = make_consumer(settings, f"awasi.{name}", *topic_names)
            try:
                await kafka_consumer.start()
            except (KafkaError, OSError) as e:
                log.warning("consumer cannot reach the broker; will retry",
                            extra={"error": repr(e)})
                await _stop_quietly(kafka_consumer)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except BaseException:
                # Cancelled while joining (the service stops before the broker
                # answered): stop it, or its group coordinator retries for ever.
                await _stop_quietly(kafka_consumer)
                raise
            break
        try:
            await IdempotentConsumer(
                name=name, schema=schema, pool=app[keys.BACKGROUND_POOL],
                consumer=kafka_consumer,
                producer=link.producer, handler=handler, accepts=accepts,
                max_retries=settings.consumer_max_retries,
                retry_backoff_s=settings.consumer_retry_backoff_s,
                metrics=ConsumerMetrics(app[keys.REGISTRY]), prepare=prepare,
            ).run()
        finally:
            await kafka_consumer.stop()

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with background(run(app), f"{name}-consumer", app):
            yield

    return ctx


async def _stop_quietly(client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    """Stop a client that failed or was cancelled while starting (bounded: the broker
    may be gone)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), 5)


@contextlib.asynccontextmanager
async def background(coro: Awaitable[None], name: str, app: web.Application | None = None,
                     *, stopping: asyncio.Event | None = None, grace_s: float = 0.0,
                     ) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``coro`` as a task; on exit cancel it and wait for it. A task that dies
    on its own is logged (it should not: loops catch their own errors); given ``app``,
    it is also registered so ``/readyz`` answers 503 once it has stopped.

    Given ``stopping``, a task that can stop between two pieces of work: on exit the
    event is set first and the task has ``grace_s`` to return on its own, and only
    then is it cancelled. A cancel lands anywhere, for instance after a mail server
    accepted a message and before the row saying so committed; a stop between
    batches leaves nothing half done."""
    task: asyncio.Task[None] = asyncio.ensure_future(coro)
    task.set_name(name)
    if app is not None:
        app[keys.BACKGROUND].append(task)

    def done(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("background task died", exc_info=t.exception(), extra={"task": name})

    task.add_done_callback(done)
    try:
        yield task
    finally:
        if stopping is not None and not task.done():
            stopping.set()
            await asyncio.wait({task}, timeout=grace_s)
        task.cancel()
        # A task that died on its own was logged by ``done``: the shutdown goes on.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less once ``stopping`` is set: a loop's wait between two
    pieces of work that ``background(..., stopping=...)`` can end at once."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


def serve(app: web.Application, host: str, port: int, shutdown_timeout: float) -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting, drain in-flight requests
    (up to ``shutdown_timeout``), and run the cleanup contexts."""
    web.run_app(app, host=host, port=port, shutdown_timeout=shutdown_timeout,
                print=None, access_log=None, handle_signals=True)
