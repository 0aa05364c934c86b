"""Oversight's costly public endpoints: web requests holding every web connection do
not stall the consumer or the scheduler (they work on the background pool), and the
public statistics come from a snapshot the scheduler refreshes, not from an
aggregation over every case per request."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from awasi.events import topics
from awasi.settings import Settings
from awasi.web import keys as web_keys
from services.oversight.app import create_app
from services.oversight.clock import ManualClock
from tests.support.oversight import (
    ACK_DUE,
    MONDAY_9,
    eventually,
    feed,
    make_ctx,
    new_cid,
    open_pool,
    routed,
    send,
    submitted,
)
from tests.support.services import running_app

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def test_a_burst_holding_every_web_connection_does_not_stall_escalations(
    settings: Settings,
) -> None:
    clock = ManualClock(MONDAY_9)
    cid = new_cid()
    settings = settings.with_(db_pool_min=2, db_pool_max=2, db_background_pool_max=3)
    assert settings.database_url
    probe = await open_pool(settings.database_url)
    try:
        async with running_app(create_app(settings, clock=clock)) as client:
            app = client.server.app
            web_pool = app[web_keys.POOL]
            assert web_pool is not app[web_keys.BACKGROUND_POOL]
            async with contextlib.AsyncExitStack() as held:
                # Every web connection busy, as under a burst of page views.
                for _ in range(2):
                    await held.enter_async_context(web_pool.acquire())
                with pytest.raises(TimeoutError):
                    await web_pool.acquire(timeout=0.2)
                # A page view now waits for a connection...
                page = asyncio.ensure_future(client.get("/api/v1/audit/checkpoints"))
                # ...while the consumer applies events and the scheduler escalates.
                await send(settings, topics.INTAKE, submitted(cid, MONDAY_9))
                await send(settings, topics.ROUTER, routed(cid, MONDAY_9, ACK_DUE, None))
                await eventually(lambda: probe.fetchval(
                    "SELECT count(*) FROM oversight.deadlines WHERE complaint_id = $1"
                    " AND status = 'pending'", cid), what="the consumer applied the events")
                clock.set(ACK_DUE + timedelta(seconds=1))
                await eventually(lambda: probe.fetchval(
                    "SELECT count(*) FROM oversight.outbox WHERE key = $1"
                    " AND event_type = 'case.escalated' AND sent_at IS NOT NULL", cid),
                    what="the breach escalated and relayed")
                assert await probe.fetchval(
                    "SELECT count(*) FROM oversight.review_items WHERE complaint_id = $1",
                    cid) == 1
                assert not page.done()
            r = await page  # the burst ends: the waiting request is served
            assert r.status == 200
    finally:
        await probe.close()


async def test_statistics_come_from_a_snapshot_refreshed_on_schedule(settings: Settings) -> None:
    settings = settings.with_(stats_refresh_s=3600)
    assert settings.database_url
    pool = await open_pool(settings.database_url)
    ctx, clock = make_ctx()
    try:
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9), routed(cid, MONDAY_9, ACK_DUE, None))
        async with running_app(create_app(settings, clock=clock)) as client:
            await eventually(lambda: pool.fetchval("SELECT body FROM oversight.stats_snapshot"),
                             what="the first snapshot")
            first = await (await client.get("/api/v1/stats/agencies")).json()
            assert [a["received"] for a in first["agencies"]] == [1]
            # A new case: the public figures stay those of the snapshot...
            other = new_cid()
            await feed(pool, ctx, submitted(other, MONDAY_9),
                       routed(other, MONDAY_9, ACK_DUE, None))
            await asyncio.sleep(0.6)  # three scheduler sweeps: not due for an hour
            again = await (await client.get("/api/v1/stats/agencies")).json()
            assert again == first
            html = await (await client.get("/?lang=en")).text()
            assert "Complaints received" in html
            assert "they are recomputed every 3600 seconds" in html  # the staleness, stated
            html_id = await (await client.get("/?lang=id")).text()
            assert "dihitung ulang setiap 3600 detik" in html_id
            # ...until the job falls due (here: made due now), then every reader sees
            # the new figures, computed once, in the background.
            await pool.execute("UPDATE oversight.jobs SET next_at = '-infinity'"
                               " WHERE name = 'stats_snapshot'")

            async def refreshed() -> bool:
                body = await (await client.get("/api/v1/stats/agencies")).json()
                return [a["received"] for a in body["agencies"]] == [2]

            await eventually(refreshed, what="the refreshed snapshot")
            assert await pool.fetchval("SELECT next_at > now() + interval '59 minutes'"
                                       " FROM oversight.jobs WHERE name = 'stats_snapshot'")
    finally:
        await pool.close()
