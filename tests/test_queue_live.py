"""The queue as a long-poll: ``GET /api/v1/tickets`` answers with an ETag; with
If-None-Match it answers 304 while nothing changed, and with ``wait`` it holds the
request until the caller's agency's queue changes (a NOTIFY from the tickets table),
so a new ticket is seen as soon as the routing transaction commits."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from awasi.settings import Settings
from tests.support.router import (
    bearer,
    create_users,
    login,
    router_settings,  # noqa: F401 - fixture
    send,
    submitted,
    wait_ticket,
)
from tests.support.services import running_service


async def test_long_poll_answers_when_the_agency_queue_changes(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    settings = router_settings
    bootstrap = settings.kafka_bootstrap or ""
    first = submitted("MDN", "jalan-rusak", "Jalan berlubang di depan sekolah.")
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        pupr = await login(client, "mdn.pupr")
        await send(bootstrap, first)
        await wait_ticket(client, pupr, first.payload["tracking_code"])

        r = await client.get("/api/v1/tickets", headers=bearer(pupr))
        assert r.status == 200
        tag = r.headers["ETag"]
        assert tag.startswith('"') and r.headers["Cache-Control"] == "no-store"
        # Unchanged: a conditional GET answers 304 at once, with the same ETag.
        r = await client.get("/api/v1/tickets",
                             headers=bearer(pupr) | {"If-None-Match": tag})
        assert r.status == 304 and r.headers["ETag"] == tag
        # Another ETag (or a list of them without ours): the list itself.
        r = await client.get("/api/v1/tickets",
                             headers=bearer(pupr) | {"If-None-Match": '"stale", "old"'})
        assert r.status == 200 and r.headers["ETag"] == tag

        # Another agency's new ticket does not answer the long-poll: it waits it out.
        waste = submitted("MDN", "lainnya", "Sampah menumpuk di pasar.")  # keyword -> DLH
        started = time.monotonic()
        poll = asyncio.ensure_future(client.get(
            "/api/v1/tickets", params={"wait": "2"},
            headers=bearer(pupr) | {"If-None-Match": tag}))
        await asyncio.sleep(0.3)
        await send(bootstrap, waste)
        r = await poll
        assert r.status == 304 and r.headers["ETag"] == tag
        assert time.monotonic() - started >= 1.9
        dlh = await login(client, "mdn.dlh")
        await wait_ticket(client, dlh, waste.payload["tracking_code"])

        # Its own agency's new ticket answers it as soon as the ticket is committed.
        second = submitted("MDN", "jalan-rusak", "Jembatan kayu retak.")
        started = time.monotonic()
        poll = asyncio.ensure_future(client.get(
            "/api/v1/tickets", params={"wait": "20"},
            headers=bearer(pupr) | {"If-None-Match": tag}))
        await asyncio.sleep(0.3)
        assert not poll.done()
        await send(bootstrap, second)
        r = await poll
        assert r.status == 200
        body = await r.json()
        assert body["tickets"][0]["tracking_code"] == second.payload["tracking_code"]
        assert r.headers["ETag"] != tag
        # Answered by the change, not by the 20 s wait running out.
        assert time.monotonic() - started < 15

        # A change of one of its tickets (acknowledged) answers it too.
        tag = r.headers["ETag"]
        poll = asyncio.ensure_future(client.get(
            "/api/v1/tickets", params={"wait": "20"},
            headers=bearer(pupr) | {"If-None-Match": tag}))
        await asyncio.sleep(0.3)
        ack = await client.post(f"/api/v1/tickets/{body['tickets'][0]['id']}/acknowledge",
                                headers=bearer(pupr))
        assert ack.status == 200
        r = await poll
        assert r.status == 200
        assert (await r.json())["tickets"][0]["status"] == "acknowledged"

        # The wait is bounded.
        r = await client.get("/api/v1/tickets", params={"wait": "31"}, headers=bearer(pupr))
        assert r.status == 422


async def test_shutdown_answers_pending_long_polls_at_once(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    settings = router_settings
    async with aiohttp.ClientSession() as outside:
        async with running_service("router", settings) as client:
            await create_users(settings.database_url or "")
            pupr = await login(client, "mdn.pupr")
            r = await client.get("/api/v1/tickets", headers=bearer(pupr))
            tag = r.headers["ETag"]
            poll = asyncio.ensure_future(outside.get(
                client.make_url("/api/v1/tickets"), params={"wait": "30"},
                headers=bearer(pupr) | {"If-None-Match": tag}))
            await asyncio.sleep(0.5)
            assert not poll.done()
            started = time.monotonic()
        # Graceful shutdown did not wait out the 30 s: the long-poll was answered (a
        # bound against the 30 s wait, not a speed claim).
        assert time.monotonic() - started < 10
        r = await poll
        assert r.status == 304
