"""Database outages: the deadline scheduler's loop outlives one and fires what fell due
meanwhile; the LISTEN connection (awasi.db.listen) comes back after its backend is
killed, waking its waiters, and hears notifications again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from awasi.db.listen import Notifications
from services.oversight.scheduler import Scheduler
from tests.support.oversight import (
    ACK_DUE,
    MONDAY_9,
    feed,
    make_ctx,
    new_cid,
    open_pool,
    outbox_events,
    routed,
    submitted,
    types,
)
from tests.support.stack import PostgresCluster
from tests.support.wait import eventually


@contextlib.asynccontextmanager
async def database_down(pg: PostgresCluster, database_url: str) -> AsyncIterator[None]:
    """No new connections to the test's database, and every open one killed, for the
    duration of the block."""
    own = await asyncpg.connect(database_url)
    try:
        name = await own.fetchval("SELECT current_database()")
    finally:
        await own.close()
    admin = await asyncpg.connect(pg.dsn("postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = $1", name)
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_the_scheduler_survives_a_database_outage(
        database_url: str, pg: PostgresCluster, caplog: pytest.LogCaptureFixture) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9), routed(cid, MONDAY_9, ACK_DUE, None))
        scheduler = Scheduler(pool, ctx.catalog, clock)
        task = asyncio.ensure_future(scheduler.run(0.05))
        try:
            async with database_down(pg, database_url):
                clock.set(ACK_DUE + timedelta(minutes=1))  # the breach falls due meanwhile
                await eventually(lambda: _logged(caplog, "scheduler sweep failed"),
                                 within=30, what="a failed sweep")
            assert not task.done(), "the scheduler loop died with the database"
            await eventually(lambda: _breached(pool, cid), within=60,
                             what="the breach fired after the outage")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert types(await outbox_events(pool, cid)) == [
            ("deadline.breached", "acknowledge"), ("case.escalated", 1)]
    finally:
        await pool.close()


async def test_the_listen_connection_reconnects_and_hears_again(
        database_url: str, pg: PostgresCluster) -> None:
    feed_ = Notifications(database_url, "awasi_test_chan")
    task = asyncio.ensure_future(feed_.run())
    notifier = await asyncpg.connect(database_url)
    try:
        await eventually(lambda: _at_least(feed_.version("k")[0], 1), within=30,
                         what="listening")

        async def heard(n: int) -> bool:
            await notifier.execute("SELECT pg_notify('awasi_test_chan', 'k')")
            await asyncio.sleep(0.05)
            return feed_.version("k")[1] >= n

        await eventually(lambda: heard(1), within=30, what="a notification heard")
        epoch = feed_.version("k")[0]
        waiter = asyncio.ensure_future(feed_.wait("other", feed_.version("other"), 60))
        await asyncio.sleep(0.1)
        # Kill the listener's backend (not the notifier's).
        killed = await notifier.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
            " AND pid <> pg_backend_pid()")
        assert killed == 1
        # Its waiters are woken (what was sent while it was away is lost) ...
        assert await asyncio.wait_for(waiter, 30) is True
        await eventually(lambda: _at_least(feed_.version("k")[0], epoch + 1), within=30,
                         what="reconnected")
        # ... and it hears again.
        before = feed_.version("k")[1]
        await eventually(lambda: heard(before + 1), within=30, what="heard after reconnect")
        assert not task.done()
    finally:
        await notifier.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _at_least(value: int, n: int) -> bool:
    await asyncio.sleep(0.02)
    return value >= n


async def _logged(caplog: pytest.LogCaptureFixture, message: str) -> bool:
    await asyncio.sleep(0)
    return any(message in r.getMessage() for r in caplog.records)


async def _breached(pool: asyncpg.Pool, cid: str) -> bool:
    try:
        events = await outbox_events(pool, cid)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return ("deadline.breached", "acknowledge") in types(events)
