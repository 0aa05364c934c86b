"""``/readyz`` says "not ready" (503, naming the failing check) when the database or
the broker is unreachable, while the service shuts down, and when one of its loops
(a consumer, the relay, the scheduler, ...) has stopped; and "ready" again once the
cause is gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from awasi.embedded import EmbeddedBroker
from awasi.settings import Settings
from awasi.web import keys
from awasi.web.app import background, create_base_app
from tests.support.services import running_app, running_service
from tests.support.wait import eventually


@pytest.fixture
async def intake(settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", settings) as client:
        await eventually(lambda: _ready(client), within=60, what="intake ready")
        yield client


async def _readyz(client: TestClient) -> tuple[int, dict[str, Any]]:
    r = await client.get("/readyz")
    return r.status, await r.json()


async def _ready(client: TestClient) -> bool:
    return (await _readyz(client))[0] == 200


async def _not_ready(client: TestClient) -> dict[str, Any] | None:
    status, body = await _readyz(client)
    return body if status == 503 else None


async def test_not_ready_while_the_broker_is_unreachable(
        intake: TestClient, broker: EmbeddedBroker) -> None:
    broker.pause()
    try:
        body = await eventually(lambda: _not_ready(intake), within=30, what="503")
        assert body["ready"] is False
        assert body["checks"]["broker"].startswith("error")
        assert body["checks"]["database"] == "ok"
    finally:
        broker.resume()
    await eventually(lambda: _ready(intake), within=60, what="ready again")


async def test_not_ready_while_the_database_is_unreachable(
        intake: TestClient, settings: Settings, pg: Any) -> None:
    own = await asyncpg.connect(settings.require_database())
    try:
        name = await own.fetchval("SELECT current_database()")
    finally:
        await own.close()
    admin = await asyncpg.connect(pg.dsn("postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = $1", name)
        body = await eventually(lambda: _not_ready(intake), within=30, what="503")
        assert body["checks"]["database"].startswith("error")
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await eventually(lambda: _ready(intake), within=60, what="ready again")
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_not_ready_while_shutting_down(intake: TestClient) -> None:
    await intake.server.app.shutdown()  # what a SIGTERM starts (on_shutdown signals)
    status, body = await _readyz(intake)
    assert status == 503
    assert body["checks"]["shutdown"] == "in progress"


async def test_not_ready_once_a_background_loop_has_died(settings: Settings) -> None:
    app = create_base_app(settings, "probe", title="probe")
    crash = asyncio.Event()

    async def loop() -> None:
        await crash.wait()
        raise RuntimeError("a bug in the loop")

    async def ctx(app: Any) -> AsyncIterator[None]:
        async with background(loop(), "probe-consumer", app):
            yield

    app.cleanup_ctx.append(ctx)
    async with running_app(app) as client:
        assert await _readyz(client) == (200, {"ready": True, "checks": {}})
        assert [t.get_name() for t in app[keys.BACKGROUND]] == ["probe-consumer"]
        crash.set()
        body = await eventually(lambda: _not_ready(client), within=10, what="503")
        assert body["checks"]["probe-consumer"] == "stopped: RuntimeError"


async def test_every_service_registers_its_loops(settings: Settings) -> None:
    expected = {"intake": {"intake-relay", "intake-consumer", "intake-batcher"},
                "router": {"router-relay", "router-consumer", "router-queue-listen"},
                "oversight": {"oversight-relay", "oversight-consumer", "oversight-scheduler"}}
    for name, loops in expected.items():
        async with running_service(name, settings) as client:
            await eventually(lambda c=client: _ready(c), within=60, what=f"{name} ready")
            names = {t.get_name() for t in client.server.app[keys.BACKGROUND]}
            assert loops <= names, (name, names)
