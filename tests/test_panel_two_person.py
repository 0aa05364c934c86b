"""The panel checks itself, through the API: a finding is a draft until a second
member confirms it (never its author); amending and withdrawing take two members
too, with every version kept and every step on the hash chain under the member's
name; a member with a declared conflict of interest cannot claim, draft or confirm
on that agency's cases, and the queue says who is recused and why; panel members
read the log of changes to staff accounts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from awasi.events import topics
from awasi.identity.store import record_audit
from awasi.settings import Settings
from services.oversight import stats
from services.oversight.chain import verify
from services.oversight.clock import ManualClock
from tests.support.kafka import read_topic
from tests.support.oversight import (
    ACK_DUE,
    AGENCY,
    MONDAY_9,
    bearer,
    eventually,
    login,
    new_cid,
    oversight,
    pool_of,
    routed,
    send,
    submitted,
)

FINDING = {"outcome": "maladministration", "maladministration_type": "undue_delay",
           "recommendation": "Percepat penerbitan KTP", "published": True}


async def breached_case(settings: Settings, client: TestClient, clock: ManualClock,
                        code: str) -> str:
    cid = new_cid()
    pool = pool_of(client)
    await send(settings, topics.INTAKE, submitted(cid, MONDAY_9, code))
    await send(settings, topics.ROUTER, routed(cid, MONDAY_9, ACK_DUE, None, code=code))
    await eventually(lambda: pool.fetchval(
        "SELECT count(*) FROM oversight.deadlines WHERE complaint_id = $1", cid),
        what="deadlines scheduled")
    clock.set(ACK_DUE + timedelta(hours=1))
    await eventually(lambda: pool.fetchval(
        "SELECT count(*) FROM oversight.review_items WHERE complaint_id = $1", cid),
        what="the breach in the queue")
    return cid


async def error_code(r: Any) -> str:
    return str((await r.json())["error"]["code"])


async def test_a_draft_needs_a_second_member_and_changes_need_two(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    code = "AWS-TWO001"
    async with oversight(settings, clock) as client:
        pool = pool_of(client)
        cid = await breached_case(settings, client, clock, code)
        ani = bearer(await login(client, "ani", "panel"))
        budi = bearer(await login(client, "budi", "panel"))
        staff = bearer(await login(client, "petugas", "staff", agency=AGENCY))

        r = await client.post(f"/api/v1/cases/{code}/findings", headers=ani, json=FINDING)
        assert r.status == 201, await r.text()
        draft = await r.json()
        assert draft["status"] == "draft" and draft["kind"] == "record"
        # Not published, not counted, still queued.
        assert await pool.fetchval("SELECT count(*) FROM oversight.findings") == 0
        async with pool.acquire() as conn:
            assert await stats.published_findings(conn) == []  # the dashboard's list
        r = await client.get("/api/v1/review-queue", headers=ani)
        assert [i["tracking_code"] for i in (await r.json())["items"]] == [code]
        # One draft per case at a time.
        r = await client.post(f"/api/v1/cases/{code}/findings", headers=ani, json=FINDING)
        assert r.status == 409 and await error_code(r) == "proposal_pending"
        r = await client.get("/api/v1/findings/drafts", headers=budi)
        assert [(d["id"], d["tracking_code"]) for d in (await r.json())["items"]] == [
            (draft["id"], code)]

        # Its author cannot confirm; nor anyone without the panel role.
        r = await client.post(f"/api/v1/findings/{draft['id']}/confirm", headers=ani)
        assert r.status == 403 and await error_code(r) == "own_proposal"
        r = await client.post(f"/api/v1/findings/{draft['id']}/confirm", headers=staff)
        assert r.status == 403
        r = await client.post("/api/v1/findings/999999/confirm", headers=budi)
        assert r.status == 404
        r = await client.post("/api/v1/findings/nope/confirm", headers=budi)
        assert r.status == 404
        r = await client.post(f"/api/v1/findings/{draft['id']}/cancel", headers=budi)
        assert r.status == 403 and await error_code(r) == "not_author"
        assert await pool.fetchval("SELECT count(*) FROM oversight.findings") == 0

        r = await client.post(f"/api/v1/findings/{draft['id']}/confirm", headers=budi)
        assert r.status == 200, await r.text()
        body = await r.json()
        fid = body["finding"]["id"]
        assert fid == draft["id"] and body["status"] == "confirmed"
        assert body["finding"]["recorded_by"] == "ani"
        assert body["finding"]["confirmed_by"] == "budi"
        r = await client.post(f"/api/v1/findings/{draft['id']}/confirm", headers=budi)
        assert r.status == 409 and await error_code(r) == "not_pending"
        r = await client.get("/api/v1/review-queue", headers=ani)
        assert (await r.json())["items"] == []
        async with pool.acquire() as conn:
            assert len(await stats.published_findings(conn)) == 1
        seen = await read_topic(settings.kafka_bootstrap or "", topics.OVERSIGHT,
                                until=lambda ms: any(m["type"] == "finding.recorded"
                                                     for m in ms))
        # Only the confirmed finding reaches the topic; no draft, no staff name.
        assert not {m["type"] for m in seen} & {"finding.proposed", "finding.confirmed"}
        assert all("ani" not in m["_raw"] and "budi" not in m["_raw"] for m in seen)

        # An amendment: proposed by budi, confirmed by ani (not by budi).
        amended = {**FINDING, "recommendation": "Terbitkan KTP dalam 3 hari kerja"}
        r = await client.post(f"/api/v1/findings/{fid}/amend", headers=budi,
                              json={"finding": amended, "reason": "Tenggat lebih jelas"})
        assert r.status == 201, await r.text()
        change = await r.json()
        assert change["kind"] == "amend" and change["status"] == "draft"
        r = await client.post(f"/api/v1/findings/{fid}/withdraw", headers=ani,
                              json={"reason": "Keliru"})
        assert r.status == 409 and await error_code(r) == "proposal_pending"
        r = await client.post(f"/api/v1/findings/{change['id']}/confirm", headers=budi)
        assert r.status == 403 and await error_code(r) == "own_proposal"
        # Not in effect before confirmation.
        assert await pool.fetchval("SELECT recommendation FROM oversight.findings") == \
            "Percepat penerbitan KTP"
        r = await client.post(f"/api/v1/findings/{change['id']}/confirm", headers=ani)
        assert r.status == 200
        assert await pool.fetchval("SELECT recommendation FROM oversight.findings") == \
            "Terbitkan KTP dalam 3 hari kerja"

        # A withdrawal: proposed by ani, confirmed by budi; the finding leaves every count.
        r = await client.post(f"/api/v1/findings/{fid}/withdraw", headers=ani,
                              json={"reason": "Bukti baru: KTP sudah terbit tepat waktu"})
        assert r.status == 201
        withdrawal = await r.json()
        r = await client.post(f"/api/v1/findings/{withdrawal['id']}/confirm", headers=budi)
        assert r.status == 200
        assert await pool.fetchval("SELECT count(*) FROM oversight.findings") == 0
        async with pool.acquire() as conn:
            assert await stats.published_findings(conn) == []
        r = await client.post(f"/api/v1/findings/{fid}/amend", headers=budi,
                              json={"finding": amended, "reason": "lagi"})
        assert r.status == 404

        # The history keeps every proposal and every replaced version.
        r = await client.get(f"/api/v1/findings/{fid}/history", headers=budi)
        history = await r.json()
        assert history["withdrawn"] is True and history["current"] is None
        assert [(p["kind"], p["proposed_by"], p["decided_by"], p["status"])
                for p in history["proposals"]] == [
            ("record", "ani", "budi", "confirmed"), ("amend", "budi", "ani", "confirmed"),
            ("withdraw", "ani", "budi", "confirmed")]
        assert [v["recommendation"] for v in history["replaced_versions"]] == [
            "Percepat penerbitan KTP", "Terbitkan KTP dalam 3 hari kerja"]

        # Every step on the chain, with the member who took it; the chain verifies.
        async def on_chain() -> Any:
            rows = await pool.fetch(
                "SELECT event_type, actor, payload FROM oversight.timeline"
                " WHERE complaint_id = $1 AND event_type LIKE 'finding.%' ORDER BY seq", cid)
            return rows if len(rows) == 7 else None

        rows = await eventually(on_chain, what="the findings' history on the chain")
        steps = [(r["event_type"], r["actor"]) for r in rows
                 if r["event_type"] != "finding.recorded"]
        assert steps == [("finding.proposed", "ani"), ("finding.confirmed", "budi"),
                         ("finding.proposed", "budi"), ("finding.confirmed", "ani"),
                         ("finding.proposed", "ani"), ("finding.confirmed", "budi")]
        assert ("finding.recorded", "ani") in [(r["event_type"], r["actor"]) for r in rows]
        async with pool.acquire() as conn:
            assert (await verify(conn)).ok


async def test_conflicts_of_interest_recuse_a_member(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    code = "AWS-COI001"
    async with oversight(settings, clock) as client:
        await breached_case(settings, client, clock, code)
        ani = bearer(await login(client, "ani", "panel"))
        budi = bearer(await login(client, "budi", "panel"))
        citra = bearer(await login(client, "citra", "panel"))

        r = await client.post("/api/v1/panel/conflicts", headers=ani,
                              json={"agency": "NO-SUCH", "reason": "Mantan pegawai"})
        assert r.status == 422
        r = await client.post("/api/v1/panel/conflicts", headers=ani,
                              json={"agency": AGENCY, "reason": "Suami bekerja di sana"})
        assert r.status == 201

        # The queue says who is recused and why.
        r = await client.get("/api/v1/review-queue", headers=budi)
        item = (await r.json())["items"][0]
        assert item["recused"] == [{"username": "ani", "reason": "Suami bekerja di sana"}]
        r = await client.get("/api/v1/panel/conflicts", headers=budi)
        assert [(c["username"], c["agency"]) for c in (await r.json())["items"]] == [
            ("ani", AGENCY)]

        r = await client.post(f"/api/v1/review-queue/{code}/claim", headers=ani)
        assert r.status == 403 and await error_code(r) == "conflict_of_interest"
        r = await client.post(f"/api/v1/cases/{code}/findings", headers=ani, json=FINDING)
        assert r.status == 403 and await error_code(r) == "conflict_of_interest"
        # Reading the case decides nothing: allowed.
        assert (await client.get(f"/api/v1/cases/{code}/timeline", headers=ani)).status == 200

        r = await client.post(f"/api/v1/cases/{code}/findings", headers=budi, json=FINDING)
        assert r.status == 201
        draft = await r.json()
        r = await client.post(f"/api/v1/findings/{draft['id']}/confirm", headers=ani)
        assert r.status == 403 and await error_code(r) == "conflict_of_interest"
        assert await pool_of(client).fetchval("SELECT count(*) FROM oversight.findings") == 0
        r = await client.post(f"/api/v1/findings/{draft['id']}/confirm", headers=citra)
        assert r.status == 200
        r = await client.post(f"/api/v1/findings/{draft['id']}/amend", headers=ani,
                              json={"finding": FINDING, "reason": "Perlu diubah"})
        assert r.status == 403 and await error_code(r) == "conflict_of_interest"

        # Ending the declaration ends the recusal.
        r = await client.delete(f"/api/v1/panel/conflicts/{AGENCY}", headers=ani)
        assert r.status == 200
        r = await client.delete(f"/api/v1/panel/conflicts/{AGENCY}", headers=ani)
        assert r.status == 404
        r = await client.post(f"/api/v1/findings/{draft['id']}/amend", headers=ani,
                              json={"finding": FINDING, "reason": "Perlu diubah"})
        assert r.status == 201


async def test_panel_reads_the_account_audit_log(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    async with oversight(settings, clock) as client:
        pool = pool_of(client)
        for i in range(3):
            await record_audit(pool, actor="admin", action="disable", target=f"staf{i}")
        panel = bearer(await login(client, "ani", "panel"))
        staff = bearer(await login(client, "petugas", "staff", agency=AGENCY))
        client.session.cookie_jar.clear()  # each request says what it sends
        assert (await client.get("/api/v1/audit/accounts")).status == 401
        assert (await client.get("/api/v1/audit/accounts", headers=staff)).status == 403
        r = await client.get("/api/v1/audit/accounts?limit=2", headers=panel)
        body = await r.json()
        assert [(i["actor"], i["action"], i["target"]) for i in body["items"]] == [
            ("admin", "disable", "staf2"), ("admin", "disable", "staf1")]
        r = await client.get(f"/api/v1/audit/accounts?limit=2&before={body['next_before']}",
                             headers=panel)
        assert [i["target"] for i in (await r.json())["items"]] == ["staf0"]
        r = await client.get("/api/v1/audit/accounts?before=x", headers=panel)
        assert r.status == 422
        page = await (await client.get("/panel?lang=en", headers=panel)).text()
        assert "Changes to staff accounts" in page and "account disabled" in page
