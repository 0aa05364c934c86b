"""Router: routing through the real consumer (every rule kind, triage, redelivery),
the agency's actions, transfer, pause and resume, oversight's events, and deadline
arithmetic across weekends, holidays, days off and time zones."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from awasi.events import topics
from awasi.events.payloads import (
    CaseEscalated,
    CaseReopened,
    ComplaintInfoAdded,
    DeadlineBreached,
    FindingRecorded,
)
from awasi.identity import SESSION_COOKIE
from awasi.settings import Settings
from services.router import deadlines
from tests.support.kafka import read_topic
from tests.support.router import (
    bearer,
    create_users,
    event,
    login,
    router_settings,  # noqa: F401 - fixture
    send,
    submitted,
    test_catalog,
    ticket_by_code,
    wait_ticket,
)
from tests.support.services import running_service
from tests.support.wait import eventually

WIB = ZoneInfo("Asia/Jakarta")
WIT = ZoneInfo("Asia/Jayapura")
WITA = ZoneInfo("Asia/Makassar")


def utc(local: datetime) -> datetime:
    return local.astimezone(UTC)


# --- deadline arithmetic (pure) -------------------------------------------------------

def test_sorong_friday_night_counts_from_monday_in_wit() -> None:
    catalog = test_catalog()
    start = datetime(2026, 11, 27, 23, 30, tzinfo=WIT)  # a Friday, 23:30 WIT
    a = deadlines.assigned(catalog, "SRG", "SRG-PUPR", "jalan-rusak", start)
    # 5 working days: Mon 30 Nov .. Fri 4 Dec; due when Friday ends in Sorong.
    assert a.acknowledge_by == utc(datetime(2026, 12, 5, 0, 0, tzinfo=WIT))
    # jalan-rusak is "no_investigation": 14 working days -> Thu 17 Dec ends.
    assert a.resolve_by == utc(datetime(2026, 12, 18, 0, 0, tzinfo=WIT))
    assert a.policy.resolve_days == 14 and a.policy.acknowledge_days == 5


def test_acknowledgement_is_never_due_after_the_resolution() -> None:
    catalog = test_catalog()
    start = datetime(2026, 11, 30, 9, 0, tzinfo=WIB)  # a Monday morning in Medan
    light = deadlines.assigned(catalog, "MDN", "MDN-DLH", "sampah", start)  # light: 2 days
    assert light.policy.resolve_days == 2 and light.policy.acknowledge_days == 5
    assert light.acknowledge_by == light.resolve_by == utc(datetime(2026, 12, 3, 0, 0, tzinfo=WIB))


def test_the_same_instant_is_a_different_day_in_wib_and_wit() -> None:
    catalog = test_catalog()
    instant = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)  # Thu 22:30 WIB = Fri 00:30 WIT
    wib = deadlines.assigned(catalog, "MDN", "MDN-PUPR", "jalan-rusak", instant)
    wit = deadlines.assigned(catalog, "SRG", "SRG-PUPR", "jalan-rusak", instant)
    # Medan starts counting on Friday, Sorong on Monday.
    assert wib.acknowledge_by == utc(datetime(2026, 12, 4, 0, 0, tzinfo=WIB))
    assert wit.acknowledge_by == utc(datetime(2026, 12, 5, 0, 0, tzinfo=WIT))
    wita = deadlines.assigned(catalog, "MKS", "MKS-PUPR", "jalan-rusak", instant)
    # Thu 23:30 WITA: Makassar, one hour behind Sorong, still counts from Friday.
    assert wita.acknowledge_by == utc(datetime(2026, 12, 4, 0, 0, tzinfo=WITA))


def test_holidays_and_regional_days_off_are_skipped() -> None:
    catalog = test_catalog()
    start = datetime(2026, 12, 21, 10, 0, tzinfo=WIB)  # Monday before Christmas
    # Medan: 22, 23 count; 24 is Medan's extra day off; 25 Christmas (public holiday);
    # 26/27 weekend; 28, 29, 30 count -> due when the 30th ends.
    medan = deadlines.assigned(catalog, "MDN", "MDN-PUPR", "jalan-rusak", start)
    assert medan.acknowledge_by == utc(datetime(2026, 12, 31, 0, 0, tzinfo=WIB))
    # Sorong has no extra day off on the 24th: one day earlier (in its own zone).
    start_wit = datetime(2026, 12, 21, 10, 0, tzinfo=WIT)
    sorong = deadlines.assigned(catalog, "SRG", "SRG-PUPR", "jalan-rusak", start_wit)
    assert sorong.acknowledge_by == utc(datetime(2026, 12, 30, 0, 0, tzinfo=WIT))
    # Annual day off (Medan's anniversary, 1 July): from Tue 30 Jun 2026 a "light"
    # complaint (2 working days) counts Thu 2 and Fri 3 July.
    light = deadlines.assigned(catalog, "MDN", "MDN-DLH", "sampah",
                               datetime(2026, 6, 30, 9, 0, tzinfo=WIB))
    assert light.resolve_by == utc(datetime(2026, 7, 4, 0, 0, tzinfo=WIB))


def test_triage_and_dispute_deadlines_follow_the_policy() -> None:
    catalog = test_catalog()
    start = datetime(2026, 11, 27, 23, 30, tzinfo=WIT)
    assert deadlines.triage_by(catalog, "SRG", "lainnya", start) == utc(
        datetime(2026, 12, 3, 0, 0, tzinfo=WIT))  # 3 working days: Mon, Tue, Wed
    assert deadlines.dispute_until(catalog, "SRG", "SRG-PUPR", "jalan-rusak", start) == utc(
        datetime(2026, 12, 12, 0, 0, tzinfo=WIT))  # 10 working days: to Fri 11 Dec


def test_pause_and_resume_keep_the_working_time_that_was_left() -> None:
    catalog = test_catalog()
    due = utc(datetime(2026, 12, 5, 0, 0, tzinfo=WIT))  # end of Fri 4 Dec
    paused = utc(datetime(2026, 12, 3, 12, 0, tzinfo=WIT))  # Thu noon: 1.5 days left
    resumed = utc(datetime(2026, 12, 7, 6, 0, tzinfo=WIT))  # Mon 06:00
    new_due = deadlines.resumed(catalog, "SRG", paused, resumed, due)
    assert new_due == utc(datetime(2026, 12, 8, 18, 0, tzinfo=WIT))  # Tue 18:00
    assert deadlines.resumed(catalog, "SRG", paused, resumed, None) is None
    # A pause over a weekend only costs the working time that passed.
    left = catalog.region("SRG").calendar.working_time_between(paused, due)
    assert left == timedelta(hours=36)


# --- through the running service ------------------------------------------------------

async def test_routing_by_category_keyword_and_triage_through_the_consumer(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    settings = router_settings
    await create_users(settings.database_url or "")
    friday_night = datetime(2026, 11, 27, 23, 30, tzinfo=WIT)
    by_category = submitted("MDN", "asn-pungli", "Diminta uang untuk tanda tangan.")
    by_keyword = submitted("MDN", "lainnya", "Tumpukan SAMPAH di pasar, bau busuk sekali.")
    by_triage = submitted("MDN", "lainnya", "Sesuatu yang tidak jelas wewenangnya.")
    sorong = submitted("SRG", "jalan-rusak", "Jalan berlubang di depan pasar.",
                       submitted_at=friday_night)
    async with running_service("router", settings) as client:
        for env in (by_category, by_keyword, by_triage, sorong):
            await send(settings.kafka_bootstrap or "", env)
        insp = await login(client, "mdn.inspektorat")
        dlh = await login(client, "mdn.dlh")
        pupr_srg = await login(client, "srg.pupr")
        triage = await login(client, "triage.mdn")

        t1 = await wait_ticket(client, insp, by_category.payload["tracking_code"])
        assert t1["agency"] == "MDN-INSPEKTORAT" and t1["status"] == "assigned"
        assert t1["rule"] == "category:MDN:asn-pungli"
        assert t1["category"] == "asn-pungli" and t1["region"] == "MDN"
        t2 = await wait_ticket(client, dlh, by_keyword.payload["tracking_code"])
        assert t2["agency"] == "MDN-DLH" and t2["rule"] == "keyword:MDN:sampah"
        t3 = await wait_ticket(client, triage, by_triage.payload["tracking_code"],
                               path="/api/v1/triage")
        assert t3["status"] == "triage" and t3["agency"] is None and t3["rule"] == "triage"
        assert t3["deadlines"]["triage_by"] is not None
        assert t3["deadlines"]["acknowledge_by"] is None
        t4 = await wait_ticket(client, pupr_srg, sorong.payload["tracking_code"])
        assert datetime.fromisoformat(t4["deadlines"]["acknowledge_by"]) == utc(
            datetime(2026, 12, 5, 0, 0, tzinfo=WIT))
        assert datetime.fromisoformat(t4["deadlines"]["resolve_by"]) == utc(
            datetime(2026, 12, 18, 0, 0, tzinfo=WIT))
        # Nobody else sees them.
        assert await ticket_by_code(client, dlh, by_category.payload["tracking_code"]) is None
        assert await ticket_by_code(client, insp, by_triage.payload["tracking_code"]) is None
        srg_triage = await login(client, "triage.srg")
        assert await ticket_by_code(client, srg_triage, by_triage.payload["tracking_code"],
                                    path="/api/v1/triage") is None

        # The triage officer routes by hand; deadlines start now.
        r = await client.post(f"/api/v1/triage/{t3['id']}/route", headers=bearer(triage),
                              json={"agency": "SRG-PUPR"})
        assert r.status == 422  # an agency of another region
        r = await client.post(f"/api/v1/triage/{t3['id']}/route", headers=bearer(triage),
                              json={"agency": "MDN-PUPR"})
        routed = await r.json()
        assert r.status == 200, routed
        assert routed["agency"] == "MDN-PUPR" and routed["rule"] == "manual:triage.mdn"
        assert routed["status"] == "assigned" and routed["deadlines"]["acknowledge_by"]
        r = await client.post(f"/api/v1/triage/{t3['id']}/route", headers=bearer(triage),
                              json={"agency": "MDN-PUPR"})
        assert r.status == 404  # no longer in the triage queue

        # Events on the router's topic: routed, needs_triage, routed by hand.
        messages = await read_topic(
            settings.kafka_bootstrap or "", topics.ROUTER,
            until=lambda ms: sum(m.get("type") == "complaint.routed" for m in ms) >= 4)
        routed_events = {m["complaint_id"]: m for m in messages
                         if m["type"] == "complaint.routed"}
        assert routed_events[by_category.complaint_id]["payload"]["rule"] == \
            "category:MDN:asn-pungli"
        assert routed_events[by_triage.complaint_id]["payload"]["agency"] == "MDN-PUPR"
        assert any(m["type"] == "complaint.needs_triage"
                   and m["complaint_id"] == by_triage.complaint_id for m in messages)
        assert all(m["_key"] == m["complaint_id"] for m in messages)


async def test_redelivered_submission_never_makes_a_second_ticket(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    settings = router_settings
    env = submitted("MDN", "jalan-rusak", "Jalan rusak parah.")
    # The same complaint again under a new event id (intake's relay republished it
    # after a crash between publish and mark, say, with a fresh envelope).
    again = submitted("MDN", "jalan-rusak", "Jalan rusak parah.",
                      complaint_id=env.complaint_id)
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        token = await login(client, "mdn.pupr")
        for e in (env, env, again, env):
            await send(settings.kafka_bootstrap or "", e)
        marker = submitted("MDN", "jalan-rusak", "Sesudahnya.")
        await send(settings.kafka_bootstrap or "", marker)
        # Same partition (key = complaint id)? Not necessarily; wait for both.
        await wait_ticket(client, token, env.payload["tracking_code"])
        await wait_ticket(client, token, marker.payload["tracking_code"])
        conn = await asyncpg.connect(settings.database_url)
        try:
            async def all_applied() -> bool:
                n = await conn.fetchval("SELECT count(*) FROM router.processed_events")
                return n >= 3  # env, again, marker: three distinct event ids
            await eventually(all_applied, what="events applied")
            count = await conn.fetchval(
                "SELECT count(*) FROM router.tickets WHERE complaint_id = $1", env.complaint_id)
            assert count == 1
            outbox = await conn.fetchval(
                "SELECT count(*) FROM router.outbox WHERE key = $1", env.complaint_id)
            assert outbox == 1  # one complaint.routed, not three
        finally:
            await conn.close()


async def test_agency_actions_pause_resume_transfer_and_oversight_events(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    settings = router_settings
    bootstrap = settings.kafka_bootstrap or ""
    env = submitted("MDN", "jalan-rusak", "Jalan rusak di Jl. Gatot Subroto.")
    moved = submitted("MDN", "jalan-rusak", "Ini sebenarnya soal sampah.")
    code = env.payload["tracking_code"]
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        pupr = await login(client, "mdn.pupr")
        dlh = await login(client, "mdn.dlh")
        await send(bootstrap, env)
        await send(bootstrap, moved)
        t = await wait_ticket(client, pupr, code)
        tid = t["id"]
        h = bearer(pupr)

        # Resolve needs a note; respond needs a message: 422 naming the field.
        r = await client.post(f"/api/v1/tickets/{tid}/resolve", headers=h, json={})
        assert r.status == 422 and (await r.json())["error"]["details"]["fields"][0]["field"] \
            == "note"
        r = await client.post(f"/api/v1/tickets/{tid}/acknowledge", headers=h)
        assert r.status == 200 and (await r.json())["status"] == "acknowledged"
        r = await client.post(f"/api/v1/tickets/{tid}/acknowledge", headers=h)
        body = await r.json()
        assert r.status == 409 and body["error"]["code"] == "invalid_transition"
        assert set(body["error"]) == {"code", "message", "details"}

        # Ask the citizen: the clock pauses.
        before = datetime.fromisoformat(t["deadlines"]["resolve_by"])
        r = await client.post(f"/api/v1/tickets/{tid}/request-info", headers=h,
                              json={"question": "Di nomor berapa tepatnya?"})
        asked = await r.json()
        assert r.status == 200 and asked["status"] == "waiting_info" and asked["paused"]
        assert asked["deadlines"]["next_due"] is None
        # Pretend the question was asked two hours ago, so the pause has a length.
        conn = await asyncpg.connect(settings.database_url)
        try:
            paused_at = await conn.fetchval(
                "UPDATE router.tickets SET paused_at = paused_at - interval '2 hours'"
                " WHERE id = $1 RETURNING paused_at", uuid.UUID(tid))
        finally:
            await conn.close()
        answer = event(ComplaintInfoAdded(message="Nomor 12, depan masjid."), env.complaint_id,
                       "intake")
        await send(bootstrap, answer)
        resumed = await wait_ticket(client, pupr, code, status="acknowledged")
        assert not resumed["paused"]
        cal = test_catalog().region("MDN").calendar
        expected = cal.resume(paused_at, answer.occurred_at, before)
        assert datetime.fromisoformat(resumed["deadlines"]["resolve_by"]) == expected
        # The deadline moved by exactly the working time the pause took.
        paused_for = cal.working_time_between(paused_at, answer.occurred_at)
        assert cal.working_time_between(before, expected) == paused_for

        r = await client.post(f"/api/v1/tickets/{tid}/respond", headers=h,
                              json={"message": "Tim kami akan datang besok."})
        assert r.status == 200
        r = await client.post(f"/api/v1/tickets/{tid}/resolve", headers=h,
                              json={"note": "Jalan sudah ditambal."})
        done = await r.json()
        assert r.status == 200 and done["status"] == "resolved"
        assert done["deadlines"]["dispute_until"] is not None
        r = await client.post(f"/api/v1/tickets/{tid}/resolve", headers=h, json={"note": "x"})
        assert r.status == 409

        # Oversight's events show on the ticket; case.reopened reopens it.
        for payload in (DeadlineBreached(kind="resolve", agency="MDN-PUPR", due_at=before),
                        CaseEscalated(level=1, kind="resolve", agency="MDN-PUPR"),
                        FindingRecorded(outcome="maladministration",
                                        maladministration_type="undue_delay",
                                        recommendation="Percepat penanganan.", published=True),
                        CaseReopened(reason="Warga menyanggah: belum ditambal.")):
            await send(bootstrap, event(payload, env.complaint_id, "oversight"))
        reopened = await wait_ticket(client, pupr, code, status="reopened")
        assert reopened["escalation_level"] == 1 and reopened["breached"] == ["resolve"]
        assert reopened["deadlines"]["dispute_until"] is None
        assert reopened["deadlines"]["acknowledge_by"] is not None
        r = await client.get(f"/api/v1/tickets/{tid}", headers=h)
        detail = await r.json()
        kinds = [e["kind"] for e in detail["timeline"]]
        assert kinds == [
            "complaint.submitted", "complaint.routed", "ticket.acknowledged",
            "ticket.info_requested", "complaint.info_added", "ticket.clock_resumed",
            "ticket.responded", "ticket.resolved", "deadline.breached", "case.escalated",
            "finding.recorded", "case.reopened", "ticket.reopened",
        ]
        # The ticket page says the events' codes in people's words, not as codes.
        r = await client.get(f"/tickets/{tid}?lang=id", cookies={SESSION_COOKIE: pupr})
        page = await r.text()
        assert "(penyelesaian)" in page and ": maladministrasi" in page
        assert "(resolve)" not in page and ": maladministration" not in page
        # Transfer ("bukan wewenang"): the ticket leaves PUPR's queue for DLH's.
        other = await wait_ticket(client, pupr, moved.payload["tracking_code"])
        r = await client.post(f"/api/v1/tickets/{other['id']}/transfer", headers=h,
                              json={"agency": "MDN-PUPR", "reason": "x y z"})
        assert r.status == 422  # already there
        r = await client.post(f"/api/v1/tickets/{other['id']}/transfer", headers=h,
                              json={"agency": "MDN-DLH", "reason": "Bukan wewenang PUPR"})
        assert r.status == 200
        assert await ticket_by_code(client, pupr, moved.payload["tracking_code"]) is None
        r = await client.get(f"/api/v1/tickets/{other['id']}", headers=h)
        assert r.status == 404
        got = await wait_ticket(client, dlh, moved.payload["tracking_code"])
        assert got["agency"] == "MDN-DLH" and got["status"] == "assigned"
        assert got["rule"] == "transfer:MDN-PUPR"
        r = await client.get(f"/api/v1/tickets/{other['id']}", headers=bearer(dlh))
        entries = (await r.json())["timeline"]
        assert entries[-1]["kind"] == "ticket.transferred"
        assert entries[-1]["data"]["reason"] == "Bukan wewenang PUPR"
        # The receiving agency's deadlines count from the transfer.
        assert datetime.fromisoformat(got["deadlines"]["acknowledge_by"]) == \
            cal.add_working_days(datetime.fromisoformat(entries[-1]["occurred_at"]), 5)

        messages = await read_topic(
            bootstrap, topics.ROUTER,
            until=lambda ms: any(m.get("type") == "ticket.transferred" for m in ms)
            and any(m.get("type") == "ticket.reopened" for m in ms))
        types = [m["type"] for m in messages if m["complaint_id"] == env.complaint_id]
        assert types == ["complaint.routed", "ticket.acknowledged", "ticket.info_requested",
                         "ticket.clock_resumed", "ticket.responded", "ticket.resolved",
                         "ticket.reopened"]
        resumed_event = next(m for m in messages if m["type"] == "ticket.clock_resumed")
        assert resumed_event["payload"]["agency"] == "MDN-PUPR"
        assert datetime.fromisoformat(resumed_event["payload"]["deadlines"]["resolve_by"]) \
            == expected


async def test_openapi_documents_the_router_api(router_settings: Settings) -> None:  # noqa: F811
    async with running_service("router", router_settings) as client:
        doc = await (await client.get("/openapi.json")).json()
        paths = doc["paths"]
        for path, method in [
            ("/api/v1/auth/login", "post"), ("/api/v1/tickets", "get"),
            ("/api/v1/tickets/{id}", "get"), ("/api/v1/tickets/{id}/acknowledge", "post"),
            ("/api/v1/tickets/{id}/request-info", "post"),
            ("/api/v1/tickets/{id}/respond", "post"), ("/api/v1/tickets/{id}/resolve", "post"),
            ("/api/v1/tickets/{id}/transfer", "post"), ("/api/v1/triage", "get"),
            ("/api/v1/triage/{id}/route", "post"),
        ]:
            assert method in paths[path], path
        resolve = paths["/api/v1/tickets/{id}/resolve"]["post"]
        assert {"404", "409", "422", "401", "403"} <= set(resolve["responses"])
        assert resolve["security"] == [{"bearer": []}]
        schemas = doc["components"]["schemas"]
        assert "note" in schemas["ResolveBody"]["properties"]
        assert {"id", "tracking_code", "status", "agency", "deadlines"} <= set(
            schemas["TicketOut"]["properties"])
        # Garbage bodies answer the JSON error shape, not 500.
        await create_users(router_settings.database_url or "")
        token = await login(client, "mdn.pupr")
        r = await client.post(f"/api/v1/tickets/{uuid.uuid4()}/resolve", headers={
            **bearer(token), "Content-Type": "application/json"}, data=b"{not json")
        assert r.status == 400  # the body is read before the ticket is looked up
        assert set((await r.json())["error"]) == {"code", "message", "details"}


async def test_concurrent_actions_serialise_on_the_ticket_and_withdrawal_closes_it(
        router_settings: Settings) -> None:  # noqa: F811
    from awasi.events.payloads import ComplaintWithdrawn

    settings = router_settings
    bootstrap = settings.kafka_bootstrap or ""
    first = submitted("MDN", "jalan-rusak", "Dua petugas menutup tiket bersamaan.")
    second = submitted("MDN", "jalan-rusak", "Warga mencabut laporan ini.")
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        pupr = await login(client, "mdn.pupr")
        for env in (first, second):
            await send(bootstrap, env)
        t = await wait_ticket(client, pupr, first.payload["tracking_code"])

        async def resolve(note: str) -> int:
            r = await client.post(f"/api/v1/tickets/{t['id']}/resolve", headers=bearer(pupr),
                                  json={"note": note})
            return r.status

        statuses = await asyncio.gather(*(resolve(f"catatan {i}") for i in range(5)))
        assert sorted(statuses) == [200, 409, 409, 409, 409]
        r = await client.get(f"/api/v1/tickets/{t['id']}", headers=bearer(pupr))
        assert [e["kind"] for e in (await r.json())["timeline"]].count("ticket.resolved") == 1

        w = await wait_ticket(client, pupr, second.payload["tracking_code"])
        await send(bootstrap, event(ComplaintWithdrawn(reason="Sudah diperbaiki sendiri."),
                                    second.complaint_id, "intake"))
        gone = await wait_ticket(client, pupr, second.payload["tracking_code"],
                                 status="withdrawn")
        assert gone["deadlines"]["next_due"] is None and not gone["overdue"]
        r = await client.post(f"/api/v1/tickets/{w['id']}/acknowledge", headers=bearer(pupr))
        assert r.status == 409
