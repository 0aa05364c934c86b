"""The lifecycle's rules end to end through the three services' real handlers and
database (the outboxes as topics, as in tests/test_lifecycle_property.py): a pause
and its resumption as the citizen sees them, a dispute that reopens at once, the
panel rejecting a dispute, the dispute window closing a case, one rating per
resolution."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from awasi import lifecycle
from awasi.identity import User
from services.intake import domain as intake
from services.intake.errors import NotAllowedNow
from services.oversight import panel
from services.router import api as router_api
from services.router import db as router_db
from services.router import domain as router
from services.router.errors import TicketNotFound
from tests.support.lifecycle import World, citizen, drain, new_world, pool, staff

__all__ = ["pool"]


async def rows(world: World, cid: str) -> tuple[Any, Any, Any]:
    i = await world.pool.fetchrow("SELECT * FROM intake.complaints WHERE id = $1",
                                  uuid.UUID(cid))
    r = await world.pool.fetchrow("SELECT * FROM router.tickets WHERE complaint_id = $1", cid)
    o = await world.pool.fetchrow("SELECT * FROM oversight.cases WHERE complaint_id = $1", cid)
    return i, r, o


async def statuses(world: World, cid: str) -> tuple[str, str, str]:
    i, r, o = await rows(world, cid)
    return i["status"], r["status"], o["status"]


async def timeline(world: World, cid: str) -> list[asyncpg.Record]:
    return list(await world.pool.fetch(
        "SELECT kind, data FROM intake.timeline WHERE complaint_id = $1 ORDER BY at, id",
        uuid.UUID(cid)))


async def test_the_citizen_sees_the_pause_and_the_resumed_deadlines(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, _, _ = await new_world(pool, database_url, complaints=1)
    cid, code, secret = world.complaints[0]
    await drain(world)
    assert await statuses(world, cid) == ("assigned",) * 3
    await staff(world, "acknowledge", cid)
    await staff(world, "request_info", cid)
    await drain(world)
    assert await statuses(world, cid) == ("waiting_info",) * 3
    before, _, _ = await rows(world, cid)
    # Long after every deadline, the paused clock is still not overdue.
    late = datetime.now(UTC) + timedelta(days=400)
    view = await intake.complaint_status(pool, world.catalog, code, now=late)
    assert view["paused"] is True and view["status"] == "waiting_info"
    assert not any(view["overdue"].values())
    # The answer ends the pause; the router moves the deadlines; the citizen sees them.
    await citizen(world, "add_info", cid)
    await drain(world)
    i, r, o = await rows(world, cid)
    assert (i["status"], r["status"], o["status"]) == ("acknowledged",) * 3
    assert i["resolve_by"] == r["resolve_by"] == o["resolve_by"]
    assert i["resolve_by"] >= before["resolve_by"]
    assert "ticket.clock_resumed" in [e["kind"] for e in await timeline(world, cid)]
    view = await intake.complaint_status(pool, world.catalog, code, now=late)
    assert view["paused"] is False and view["overdue"]["resolve"] is True


async def test_a_dispute_reopens_at_once_and_the_panel_may_reject_it(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, _, _ = await new_world(pool, database_url, complaints=1)
    cid, code, secret = world.complaints[0]
    await drain(world)
    await staff(world, "resolve", cid)
    await drain(world)
    assert await statuses(world, cid) == ("resolved",) * 3
    _, first, _ = await rows(world, cid)
    # A rating first, then a dispute of the same resolution: both accepted.
    out = await intake.give_feedback(pool, world.catalog, code,
                                     intake.FeedbackIn(secret=secret, rating=4))
    assert out["status"] == "resolved"
    with pytest.raises(NotAllowedNow):
        await intake.give_feedback(pool, world.catalog, code,
                                   intake.FeedbackIn(secret=secret, rating=5))
    out = await intake.give_feedback(pool, world.catalog, code,
                                     intake.FeedbackIn(secret=secret, dispute=True))
    assert out["status"] == "reopened"  # at once, for the citizen
    await drain(world)
    i, r, o = await rows(world, cid)
    # No panel action was needed: the same agency has it again, with fresh deadlines.
    assert (i["status"], r["status"], o["status"]) == ("reopened",) * 3
    assert r["agency"] == first["agency"] and r["resolve_by"] > first["updated_at"]
    assert i["resolve_by"] == r["resolve_by"] == o["resolve_by"]
    assert o["resolution_disputed"] and o["dispute_count"] == 1
    queue = await pool.fetch("SELECT reason FROM oversight.review_items"
                             " WHERE complaint_id = $1 AND closed_at IS NULL", cid)
    assert "dispute" in {q["reason"] for q in queue}
    # Statistics do not count it resolved.
    assert not lifecycle.counts_as_resolved(o["status"], o["resolution_disputed"])

    # The panel finds the resolution stands: closed everywhere, the citizen reads why.
    await panel.reject_dispute(pool, code, panel.RejectDisputeIn(
        reason="Foto menunjukkan pekerjaan selesai."), "pengawas", datetime.now(UTC))
    await drain(world)
    assert await statuses(world, cid) == ("closed",) * 3
    closed = [e for e in await timeline(world, cid) if e["kind"] == "case.closed"]
    assert closed[-1]["data"]["note"] == "Foto menunjukkan pekerjaan selesai."
    assert closed[-1]["data"]["reason"] == "dispute_rejected"
    assert not await pool.fetchval("SELECT count(*) FROM oversight.review_items"
                                   " WHERE complaint_id = $1 AND closed_at IS NULL", cid)
    # Closed: nothing reopens it by accident, and the citizen can do nothing more.
    await staff(world, "resolve", cid)
    await citizen(world, "withdraw", cid)
    await drain(world)
    assert await statuses(world, cid) == ("closed",) * 3


async def test_the_dispute_window_passing_closes_the_case(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, clock, scheduler = await new_world(pool, database_url, complaints=2)
    (quiet, code, secret), (rejected, _, _) = world.complaints
    await drain(world)
    await staff(world, "resolve", quiet)
    await drain(world)
    i, _, o = await rows(world, quiet)
    window = o["dispute_until"]
    assert window is not None and i["dispute_until"] == window
    assert await pool.fetchval(
        "SELECT count(*) FROM oversight.deadlines WHERE complaint_id = $1"
        " AND kind = 'dispute' AND step = 'close' AND status = 'pending'", quiet) == 1
    clock.set(window - timedelta(minutes=1))
    await scheduler.sweep()
    await drain(world)
    assert await statuses(world, quiet) == ("resolved",) * 3
    clock.set(window + timedelta(minutes=1))
    await scheduler.sweep()
    await drain(world)
    assert await statuses(world, quiet) == ("closed",) * 3
    _, _, o = await rows(world, quiet)
    assert lifecycle.counts_as_resolved(o["status"], o["resolution_disputed"])
    # Too late to dispute now.
    with pytest.raises(NotAllowedNow):
        await intake.give_feedback(pool, world.catalog, code,
                                   intake.FeedbackIn(secret=secret, dispute=True))
    # The other complaint, still with its agency, is not closed by anything.
    assert await statuses(world, rejected) == ("assigned",) * 3


async def test_a_late_routing_never_revives_a_withdrawn_complaint(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, _, _ = await new_world(pool, database_url, complaints=1)
    cid, _, _ = world.complaints[0]
    # The citizen withdraws before intake heard the routing; the router routed it
    # before it heard of the withdrawal.
    await world.deliver("router", "intake", cid)
    await citizen(world, "withdraw", cid)
    await world.publish()
    await drain(world)
    assert await statuses(world, cid) == ("withdrawn",) * 3
    routed = [e for e in await timeline(world, cid) if e["kind"] == "complaint.routed"]
    assert routed and routed[0]["data"]["ignored"] in ("stale", "refused")
    i, _, o = await rows(world, cid)
    assert i["agency"] is None
    assert not await pool.fetchval("SELECT count(*) FROM oversight.deadlines"
                                   " WHERE complaint_id = $1 AND status = 'pending'", cid)


async def test_triage_rejects_with_a_reason_the_citizen_reads_and_the_panel_reviews(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, _, _ = await new_world(pool, database_url, complaints=0)
    receipt = await intake.submit_complaint(pool, world.catalog, world.settings,
                                            intake.SubmitCommand(
                                                region="MDN", category="lainnya",
                                                description="Halo, ini hanya uji coba saja."))
    cid, code = receipt.complaint_id, receipt.tracking_code
    world.complaints.append((cid, code, receipt.secret))
    await drain(world)
    assert await statuses(world, cid) == ("triage",) * 3
    officer = User(id=99, username="verifikator", display_name="Verifikator", role="triage",
                   agency=None, region="MDN")
    _, ticket, _ = await rows(world, cid)
    # An agency's staff cannot reject; the officer of another region does not see it.
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(TicketNotFound):
            await router.reject_by_hand(conn, world.catalog, replace(officer, region="PLJ"),
                                        str(ticket["id"]), "spam", "x", None,
                                        datetime.now(UTC))
    async with pool.acquire() as conn, conn.transaction():
        await router.reject_by_hand(conn, world.catalog, officer, str(ticket["id"]),
                                    "not_a_complaint", "Ini bukan pengaduan pelayanan publik.",
                                    None, datetime.now(UTC))
    await drain(world)
    assert await statuses(world, cid) == ("rejected",) * 3
    entry = [e for e in await timeline(world, cid) if e["kind"] == "ticket.rejected"][-1]
    assert entry["data"]["note"] == "Ini bukan pengaduan pelayanan publik."
    view = await intake.complaint_status(pool, world.catalog, code)
    assert view["status"] == "rejected" and not any(view["overdue"].values())
    queue = await pool.fetch("SELECT reason, detail FROM oversight.review_items"
                             " WHERE complaint_id = $1 AND closed_at IS NULL", cid)
    assert [q["reason"] for q in queue] == ["rejection"]
    assert not await pool.fetchval("SELECT count(*) FROM oversight.deadlines"
                                   " WHERE complaint_id = $1 AND status = 'pending'", cid)
    # Rejected twice? The ticket has left the triage queue.
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(TicketNotFound):
            await router.reject_by_hand(conn, world.catalog, officer, str(ticket["id"]),
                                        "spam", "x", None, datetime.now(UTC))


async def test_after_two_transfers_the_ticket_goes_back_to_triage(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, _, _ = await new_world(pool, database_url, complaints=1)
    cid, code, _ = world.complaints[0]
    await drain(world)
    await staff(world, "transfer", cid)  # INSPEKTORAT -> BKPSDM
    await staff(world, "transfer", cid)  # BKPSDM -> INSPEKTORAT
    await drain(world)
    i, r, o = await rows(world, cid)
    assert (i["status"], r["status"], o["status"]) == ("assigned",) * 3
    assert i["agency"] == r["agency"] == o["agency"] == "MDN-INSPEKTORAT"
    # A third transfer does not bounce on: the region's triage officer decides.
    await staff(world, "transfer", cid)
    await drain(world)
    i, r, o = await rows(world, cid)
    assert (i["status"], r["status"], o["status"]) == ("triage",) * 3
    assert i["agency"] is None and r["agency"] is None and o["agency"] is None
    assert r["triage_by"] is not None and i["triage_by"] == r["triage_by"]
    view = await intake.complaint_status(pool, world.catalog, code)
    assert view["deadlines"]["resolve_by"] is None and view["agency"] is None
    assert await pool.fetchval(
        "SELECT count(*) FROM oversight.deadlines WHERE complaint_id = $1"
        " AND kind = 'triage' AND status = 'pending'", cid) >= 1
    # Each sending agency keeps a read-only view of what it sent away.
    sent = await router_db.transferred_by(pool, "MDN-INSPEKTORAT")
    assert [(s["kind"], s["status"]) for s in sent] == [
        ("ticket.returned_to_triage", "triage"), ("ticket.transferred", "triage")]
    assert [s["tracking_code"] for s in await router_db.transferred_by(pool, "MDN-BKPSDM")] \
        == [code]
    # The triage officer routes it; the agency it lands at works it as usual.
    officer = User(id=98, username="verifikator", display_name="Verifikator", role="triage",
                   agency=None, region="MDN")
    async with pool.acquire() as conn, conn.transaction():
        await router.route_by_hand(conn, world.catalog, officer, str(r["id"]), "MDN-BKPSDM",
                                   datetime.now(UTC))
    await drain(world)
    assert await statuses(world, cid) == ("assigned",) * 3


async def test_an_unanswered_question_archives_after_a_reminder_and_an_answer_revives(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, clock, scheduler = await new_world(pool, database_url, complaints=2)
    (cid, code, secret), (late, late_code, late_secret) = world.complaints
    await drain(world)
    for c in (cid, late):
        await staff(world, "request_info", c)
    await drain(world)
    policy = world.catalog.policy("MDN", "MDN-INSPEKTORAT", "asn-pungli")
    _, ticket, _ = await rows(world, cid)
    archive_at = ticket["paused_at"] + timedelta(days=policy.incomplete_archive_days)
    # Before the reminder: nothing.
    clock.set(archive_at - timedelta(days=policy.archive_reminder_days, minutes=1))
    await scheduler.sweep()
    await drain(world)
    assert "case.info_reminder" not in [e["kind"] for e in await timeline(world, cid)]
    # The last reminder reaches the citizen's timeline (and citizen_news).
    clock.set(archive_at - timedelta(days=policy.archive_reminder_days - 1))
    await scheduler.sweep()
    await drain(world)
    reminder = [e for e in await timeline(world, cid) if e["kind"] == "case.info_reminder"]
    assert len(reminder) == 1
    assert datetime.fromisoformat(reminder[0]["data"]["archive_at"]) == archive_at
    assert await statuses(world, cid) == ("waiting_info",) * 3
    # Still unanswered when the time is up: archived everywhere.
    clock.set(archive_at + timedelta(minutes=1))
    await scheduler.sweep()
    await drain(world)
    assert await statuses(world, cid) == ("archived",) * 3
    assert await statuses(world, late) == ("archived",) * 3
    i, _, _ = await rows(world, cid)
    assert i["revive_until"] == archive_at + timedelta(days=policy.revive_days)
    # The answer within the window revives it, with the clock resumed.
    await citizen(world, "add_info", cid)
    await drain(world)
    i, r, o = await rows(world, cid)
    assert (i["status"], r["status"], o["status"]) == ("assigned",) * 3
    assert i["resolve_by"] == r["resolve_by"] == o["resolve_by"], (
        i["resolve_by"], r["resolve_by"], o["resolve_by"])
    # Past the window, an answer is refused and nothing changes.
    await pool.execute("UPDATE intake.complaints SET revive_until = now() - interval '1 day'"
                       " WHERE id = $1", uuid.UUID(late))
    with pytest.raises(NotAllowedNow):
        await intake.add_info(pool, late_code, intake.InfoIn(secret=late_secret,
                                                             message="Terlambat"))
    await drain(world)
    assert await statuses(world, late) == ("archived",) * 3


async def test_escalations_reach_people(pool: asyncpg.Pool, database_url: str) -> None:
    world, clock, scheduler = await new_world(pool, database_url, complaints=0)
    receipt = await intake.submit_complaint(pool, world.catalog, world.settings,
                                            intake.SubmitCommand(
                                                region="MDN", category="adminduk-ktp",
                                                description="KTP elektronik belum jadi."))
    cid = receipt.complaint_id
    world.complaints.append((cid, receipt.tracking_code, receipt.secret))
    await drain(world)
    _, ticket, _ = await rows(world, cid)
    assert ticket["agency"] == "MDN-DISDUKCAPIL"
    pending = {(d["step"], d["kind"]): d["fire_at"] for d in await pool.fetch(
        "SELECT step, kind, fire_at FROM oversight.deadlines WHERE complaint_id = $1"
        " AND status = 'pending'", cid)}
    # The warning: a badge on the desk's queue, and its filter.
    clock.set(pending[("warning", "acknowledge")])
    await scheduler.sweep()
    await drain(world)
    _, ticket, _ = await rows(world, cid)
    assert "acknowledge" in ticket["warned"]
    now = datetime.now(UTC)
    warned = await router_db.list_tickets(pool, now, router_db.Filters(warned=True),
                                          agency="MDN-DISDUKCAPIL")
    assert [t["tracking_code"] for t in warned] == [receipt.tracking_code]
    assert router_api.ticket_json(warned[0], now)["warned"] is True
    head = User(id=1, username="kepala", display_name="Kepala", role="head",
                agency="MDN-DISDUKCAPIL", region="MDN")
    staff_user = replace(head, username="petugas", role="staff")
    inspector = replace(staff_user, username="inspektur", agency="MDN-INSPEKTORAT")
    assert await router_db.notifications(pool, head.agency,
                                         router_api.audiences(head, world.catalog)) == []
    # The breach: the agency head is notified (not the staff); the panel's queue has it.
    clock.set(pending[("breach", "acknowledge")] + timedelta(minutes=1))
    await scheduler.sweep()
    await drain(world)
    notes = await router_db.notifications(pool, head.agency,
                                          router_api.audiences(head, world.catalog))
    assert {(n["level"], n["deadline"], n["tracking_code"]) for n in notes} >= {
        (1, "acknowledge", receipt.tracking_code)}
    assert {n["level"] for n in notes} == {1}
    assert router_api.audiences(staff_user, world.catalog) == ()
    assert await router_db.notifications(
        pool, inspector.agency, router_api.audiences(inspector, world.catalog)) == []
    # Level 2: the region's inspectorate (catalog role), and the panel's queue again.
    level2 = await pool.fetchval("SELECT fire_at FROM oversight.deadlines WHERE"
                                 " complaint_id = $1 AND step = 'escalation2'", cid)
    clock.set(level2 + timedelta(minutes=1))
    await scheduler.sweep()
    await drain(world)
    assert world.catalog.inspectorate("MDN").code == "MDN-INSPEKTORAT"
    notes = await router_db.notifications(pool, inspector.agency,
                                          router_api.audiences(inspector, world.catalog))
    assert {(n["level"], n["ticket_agency"]) for n in notes} == {(2, "MDN-DISDUKCAPIL")}
    reasons = {r["reason"] for r in await pool.fetch(
        "SELECT reason FROM oversight.review_items WHERE complaint_id = $1", cid)}
    assert {"breach", "escalation2"} <= reasons
    # Acknowledging clears the acknowledgement's warning badge.
    await staff(world, "acknowledge", cid)
    _, ticket, _ = await rows(world, cid)
    assert "acknowledge" not in ticket["warned"]


async def test_wrong_city_moves_to_the_right_regions_triage(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, _, _ = await new_world(pool, database_url, complaints=0)
    receipt = await intake.submit_complaint(pool, world.catalog, world.settings,
                                            intake.SubmitCommand(
                                                region="MDN", category="lainnya",
                                                description="Jembatan di Palembang retak."))
    cid = receipt.complaint_id
    world.complaints.append((cid, receipt.tracking_code, receipt.secret))
    await drain(world)
    _, ticket, _ = await rows(world, cid)
    medan = User(id=97, username="verif-mdn", display_name="V", role="triage", agency=None,
                 region="MDN")
    async with pool.acquire() as conn, conn.transaction():
        await router.move_region(conn, world.catalog, medan, str(ticket["id"]), "PLJ",
                                 "Lokasinya di Palembang.", datetime.now(UTC))
    await drain(world)
    i, r, o = await rows(world, cid)
    assert (i["status"], r["status"], o["status"]) == ("triage",) * 3
    assert i["region"] == r["region"] == o["region"] == "PLJ"
    assert i["triage_by"] == r["triage_by"] == o["triage_by"]
    moved = [e for e in await timeline(world, cid) if e["kind"] == "ticket.moved_region"]
    assert moved[-1]["data"]["note"] == "Lokasinya di Palembang."
    # Medan's officer no longer has it; Palembang's routes it to a Palembang agency.
    palembang = replace(medan, username="verif-plj", region="PLJ")
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(TicketNotFound):
            await router.route_by_hand(conn, world.catalog, medan, str(r["id"]),
                                       "MDN-DLH", datetime.now(UTC))
    async with pool.acquire() as conn, conn.transaction():
        await router.route_by_hand(conn, world.catalog, palembang, str(r["id"]),
                                   "PLJ-PUPR", datetime.now(UTC))
    await drain(world)
    assert await statuses(world, cid) == ("assigned",) * 3
