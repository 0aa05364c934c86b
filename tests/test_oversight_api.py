"""The main path through the real broker: events published to the topics reach the
running oversight app, a deadline passes on its clock, the breach and the level-1
escalation land on awasi.oversight.v1 and in the panel's queue, a panel member works
the case through the JSON API. Also: a restart while a deadline passes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from awasi.events import topics
from awasi.settings import Settings
from services.oversight.clock import ManualClock
from tests.support.kafka import read_topic
from tests.support.oversight import (
    ACK_DUE,
    MONDAY_9,
    bearer,
    eventually,
    login,
    new_cid,
    open_pool,
    outbox_events,
    oversight,
    pool_of,
    resolved,
    routed,
    send,
    submitted,
)

# awasi.identity (another engineer's) stores its per-request cache under string keys,
# which aiohttp 3.14 warns about; not ours to fix here, and harmless.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def test_breach_through_the_broker_to_the_panel_and_back(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    cid = new_cid()
    code = "AWS-MAIN01"
    async with oversight(settings, clock) as client:
        pool = pool_of(client)
        await send(settings, topics.INTAKE, submitted(cid, MONDAY_9, code))
        await send(settings, topics.ROUTER, routed(cid, MONDAY_9, ACK_DUE, None, code=code))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.deadlines WHERE complaint_id = $1"
            " AND status = 'pending'", cid), what="deadlines scheduled")

        clock.set(ACK_DUE + timedelta(seconds=1))
        assert settings.kafka_bootstrap
        seen = await read_topic(
            settings.kafka_bootstrap, topics.OVERSIGHT,
            until=lambda ms: {"deadline.breached", "case.escalated"} <= {m["type"] for m in ms})
        escalated = next(m for m in seen if m["type"] == "case.escalated")
        assert escalated["payload"] == {"level": 1, "kind": "acknowledge",
                                        "agency": "MDN-DISDUKCAPIL"}
        assert escalated["complaint_id"] == cid

        # Access: 401 without a token, 403 for another role.
        r = await client.get("/api/v1/review-queue")
        assert r.status == 401
        staff = await login(client, "petugas1", "staff", agency="MDN-DISDUKCAPIL")
        r = await client.get("/api/v1/review-queue", headers=bearer(staff))
        assert r.status == 403
        for path in (f"/api/v1/cases/{code}/timeline",):
            assert (await client.get(path, headers=bearer(staff))).status == 403
        r = await client.post(f"/api/v1/cases/{code}/reopen", json={"reason": "x"},
                              headers=bearer(staff))
        assert r.status == 403

        panel = await login(client, "pengawas1", "panel")
        other = await login(client, "pengawas2", "panel")
        clock.advance(timedelta(hours=2))
        r = await client.get("/api/v1/review-queue", headers=bearer(panel))
        assert r.status == 200
        items = (await r.json())["items"]
        assert [(i["tracking_code"], i["reason"]) for i in items] == [(code, "breach")]
        assert items[0]["age_seconds"] == 2 * 3600

        r = await client.post(f"/api/v1/review-queue/{code}/claim", headers=bearer(panel))
        assert r.status == 200
        assert (await r.json())["claimed_by"] == "pengawas1"
        r = await client.post(f"/api/v1/review-queue/{code}/claim", headers=bearer(other))
        assert r.status == 409

        # The timeline holds every topic's events, oversight's own included.
        async def timeline() -> Any:
            r = await client.get(f"/api/v1/cases/{code}/timeline", headers=bearer(panel))
            assert r.status == 200
            body = await r.json()
            kinds = [e["type"] for e in body["entries"]]
            return body if "case.escalated" in kinds else None

        body = await eventually(timeline, what="oversight's own events on the timeline")
        kinds = [e["type"] for e in body["entries"]]
        # Two topics: intake's and router's events may interleave either way.
        assert sorted(kinds[:2]) == ["complaint.routed", "complaint.submitted"]
        assert kinds[2:4] == ["deadline.breached", "case.escalated"]
        # The claim above is an event of oversight's own topic too: on the timeline
        # once the relay and the consumer have carried it (a CI run saw it already).
        assert kinds[4:] in ([], ["case.claimed"])
        body["entries"].sort(key=lambda e: e["type"] != "complaint.submitted")
        assert "reporter_ref" in body["entries"][0]["payload"]  # a pseudonym, no contact

        r = await client.post(f"/api/v1/cases/{code}/findings", headers=bearer(panel),
                              json={"outcome": "maladministration", "recommendation": "x",
                                    "published": True})
        assert r.status == 422
        r = await client.post(f"/api/v1/cases/{code}/findings", headers=bearer(other),
                              json={"outcome": "inconclusive", "recommendation": "x"})
        assert r.status == 409  # claimed by someone else
        r = await client.post(
            f"/api/v1/cases/{code}/findings", headers=bearer(panel),
            json={"outcome": "maladministration", "maladministration_type": "undue_delay",
                  "recommendation": "Percepat pelayanan KTP", "published": True})
        assert r.status == 201, await r.text()
        draft = await r.json()
        assert draft["status"] == "draft" and draft["proposed_by"] == "pengawas1"
        # A draft settles nothing: the case stays in the queue until a second member
        # confirms; its author cannot.
        r = await client.get("/api/v1/review-queue", headers=bearer(panel))
        assert [i["draft"] for i in (await r.json())["items"]] == [
            {"id": draft["id"], "proposed_by": "pengawas1"}]
        r = await client.post(f"/api/v1/findings/{draft['id']}/confirm", headers=bearer(panel))
        assert r.status == 403 and (await r.json())["error"]["code"] == "own_proposal"
        r = await client.post(f"/api/v1/findings/{draft['id']}/confirm", headers=bearer(other))
        assert r.status == 200, await r.text()
        assert (await r.json())["finding"]["confirmed_by"] == "pengawas2"
        r = await client.get("/api/v1/review-queue", headers=bearer(panel))
        assert (await r.json())["items"] == []

        # The agency has it still: nothing to reopen yet (the lifecycle's rule).
        r = await client.post(f"/api/v1/cases/{code}/reopen", headers=bearer(panel),
                              json={"reason": "Belum selesai"})
        assert r.status == 409
        await send(settings, topics.ROUTER, resolved(cid, ACK_DUE + timedelta(hours=3)))
        await eventually(lambda: pool.fetchval(
            "SELECT status = 'resolved' FROM oversight.cases WHERE complaint_id = $1", cid),
            what="the case resolved")
        r = await client.post(f"/api/v1/cases/{code}/reopen", headers=bearer(panel),
                              json={"reason": "Belum selesai"})
        assert r.status == 202
        seen = await read_topic(
            settings.kafka_bootstrap, topics.OVERSIGHT,
            until=lambda ms: {"finding.recorded", "case.reopened"} <= {m["type"] for m in ms})
        reopened = next(m for m in seen if m["type"] == "case.reopened")
        assert reopened["payload"] == {"reason": "Belum selesai"}
        assert reopened["_key"] == cid

        r = await client.get("/api/v1/cases/AWS-NOPE/timeline", headers=bearer(panel))
        assert r.status == 404
        r = await client.get("/api/v1/audit/verify")
        assert (await r.json())["ok"] is True


async def test_restart_while_a_deadline_passes_misses_nothing(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    cid = new_cid()
    async with oversight(settings, clock) as client:
        pool = pool_of(client)
        await send(settings, topics.INTAKE, submitted(cid, MONDAY_9))
        await send(settings, topics.ROUTER, routed(cid, MONDAY_9, ACK_DUE, None))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.deadlines WHERE complaint_id = $1"
            " AND status = 'pending'", cid), what="deadlines scheduled")
    # Down while the deadline passes.
    clock.set(ACK_DUE + timedelta(hours=3))
    async with oversight(settings, clock), oversight(settings, clock):
        # Two oversight processes come back at once.
        assert settings.database_url
        probe = await open_pool(settings.database_url)
        try:
            async def escalated() -> Any:
                events = await outbox_events(probe, cid)
                return events if any(e["type"] == "case.escalated" for e in events) else None

            await eventually(escalated, what="the missed breach")
            clock.advance(timedelta(seconds=1))
            await eventually(lambda: probe.fetchval(
                "SELECT count(*) = 0 FROM oversight.outbox WHERE sent_at IS NULL"),
                what="outbox drained")
            events = await outbox_events(probe, cid)
            # The warning's moment passed too, but its deadline is gone: only the breach.
            assert [e["type"] for e in events] == ["deadline.breached", "case.escalated"]
        finally:
            await probe.close()
