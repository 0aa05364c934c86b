"""Possible duplicates on a ticket and linking a duplicate to its original
(services/router/duplicates.py): through the three services' real handlers (the
duplicate ends, its citizen is told where to follow, public or private original,
the panel reviews the link), and over HTTP (the router's API and the desk page,
scope per role, the 4xx of bad links, no cycles)."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from awasi.events.envelope import Envelope
from awasi.events.payloads import ComplaintSubmitted, Location
from awasi.identity import SESSION_COOKIE, User
from awasi.settings import Settings
from awasi.web.errors import ValidationFailed
from services.intake import domain as intake
from services.intake import visibility
from services.intake.mail.texts import MailTexts
from services.router import duplicates
from services.router.errors import InvalidTransition, TicketNotFound
from tests.support.lifecycle import drain, new_world, pool
from tests.support.router import (
    bearer,
    create_users,
    login,
    router_settings,  # noqa: F401 - fixture
    send,
    wait_ticket,
)
from tests.support.services import running_service

__all__ = ["pool"]

PUNGLI = "Pungutan liar saat mengurus KTP di kantor kelurahan Sei Sikambing, diminta uang"


async def _submit(world: Any, text: str, *, visibility: str = "private",
                  email: str | None = None) -> tuple[str, str]:
    receipt = await intake.submit_complaint(
        world.pool, world.catalog, world.settings, intake.SubmitCommand(
            region="MDN", category="asn-pungli", description=text,
            visibility=visibility,  # type: ignore[arg-type]
            reporter=intake.ReporterIn(email=email) if email else None))
    world.complaints.append((receipt.complaint_id, receipt.tracking_code, receipt.secret))
    return receipt.complaint_id, receipt.tracking_code


async def test_a_linked_duplicate_ends_and_its_citizen_follows_the_original(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, _, _ = await new_world(pool, database_url, complaints=0)
    # E-mail configured: the consumer queues the citizen's e-mails (nothing is sent here).
    world.settings = world.settings.with_(smtp_url="smtp://127.0.0.1:9",
                                          mail_from="awasi@contoh.id")
    public_id, public_code = await _submit(world, PUNGLI, visibility="public")
    private_id, private_code = await _submit(
        world, "Pungli KTP di kantor kelurahan Sei Sikambing, rahasia sekali isinya")
    dup1_id, dup1_code = await _submit(world, PUNGLI + " lagi", email="warga1@contoh.id")
    dup2_id, dup2_code = await _submit(world, "Diminta uang untuk KTP di kelurahan Sei"
                                       " Sikambing", email="warga2@contoh.id",
                                       visibility="public")
    other_id, _ = await _submit(world, "Petugas tidak pernah hadir bekerja")
    await drain(world)
    tickets = {r["complaint_id"]: r for r in await pool.fetch("SELECT * FROM router.tickets")}
    dup1 = tickets[dup1_id]
    agency = dup1["agency"]
    assert agency is not None and all(tickets[c]["agency"] == agency for c in tickets)
    staff = User(id=7, username="petugas", display_name="Petugas", role="staff",
                 agency=agency, region="MDN")

    # --- possible duplicates: alike, open, same agency/region/category, never itself ---
    found = await duplicates.possible(pool, False, staff, dup1)
    codes = [r["tracking_code"] for r in found]
    assert public_code in codes and private_code in codes and dup2_code in codes
    assert dup1_code not in codes
    assert tickets[other_id]["tracking_code"] not in codes  # nothing in common
    # Another agency's staff sees none of it.
    stranger = replace(staff, agency="MDN-DISDIK")
    assert await duplicates.possible(pool, False, stranger, dup1) == []

    now = datetime.now(UTC)
    # --- refused links change nothing --------------------------------------------------
    for original in (str(dup1["id"]), dup1_code):
        async with pool.acquire() as conn, conn.transaction():
            with pytest.raises(ValidationFailed) as e:
                await duplicates.link(conn, world.catalog, staff, str(dup1["id"]), original,
                                      now)
        assert e.value.details["fields"][0]["field"] == "original"
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(ValidationFailed):
            await duplicates.link(conn, world.catalog, staff, str(dup1["id"]), "AWS-NOPE", now)
        with pytest.raises(TicketNotFound):
            await duplicates.link(conn, world.catalog, stranger, str(dup1["id"]),
                                  public_code, now)

    # --- link: to a public original by code, to a private one by id -------------------
    async with pool.acquire() as conn, conn.transaction():
        row = await duplicates.link(conn, world.catalog, staff, str(dup1["id"]),
                                    public_code.lower(), now)
        assert row["status"] == "rejected"
        assert row["duplicate_of"] == tickets[public_id]["id"]
        await duplicates.link(conn, world.catalog, staff, str(tickets[dup2_id]["id"]),
                              str(tickets[private_id]["id"]), now)
    # No cycle: the duplicate has ended, so it cannot be anyone's original, and it
    # cannot be linked twice.
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(ValidationFailed):
            await duplicates.link(conn, world.catalog, staff, str(tickets[public_id]["id"]),
                                  dup1_code, now)
        with pytest.raises(InvalidTransition):
            await duplicates.link(conn, world.catalog, staff, str(dup1["id"]),
                                  private_code, now)
    await drain(world)

    # One lifecycle: ended everywhere.
    for cid in (dup1_id, dup2_id):
        i = await pool.fetchval("SELECT status FROM intake.complaints WHERE id = $1",
                                uuid.UUID(cid))
        r = await pool.fetchval("SELECT status FROM router.tickets WHERE complaint_id = $1",
                                cid)
        o = await pool.fetchval("SELECT status FROM oversight.cases WHERE complaint_id = $1",
                                cid)
        assert (i, r, o) == ("rejected",) * 3
    assert await pool.fetchval("SELECT status FROM router.tickets WHERE complaint_id = $1",
                               public_id) == "assigned"
    # The original's timeline says a duplicate was linked to it.
    linked = await duplicates.linked_here(pool, tickets[public_id]["id"])
    assert [r["tracking_code"] for r in linked] == [dup1_code]
    assert await pool.fetchval(
        "SELECT count(*) FROM router.timeline WHERE ticket_id = $1"
        " AND kind = 'duplicate.linked_here'", tickets[public_id]["id"]) == 1
    # The panel reviews every link, as every rejection.
    detail = await pool.fetchval(
        "SELECT detail FROM oversight.review_items WHERE complaint_id = $1"
        " AND reason = 'rejection'", dup1_id)
    assert detail["duplicate_of"] == public_code and detail["reason_code"] == "duplicate"

    # --- the citizen of the duplicate: where to follow --------------------------------
    entries = {r["complaint_id"]: dict(r["data"]) for r in await pool.fetch(
        "SELECT complaint_id::text, data FROM intake.timeline"
        " WHERE kind = 'ticket.duplicate_linked'")}
    assert entries[dup1_id]["original"] == public_code
    assert entries[dup1_id]["original_public"] is True
    assert entries[dup2_id]["original"] == private_code
    assert entries[dup2_id]["original_public"] is False
    view = await intake.complaint_status(pool, world.catalog, dup1_code,
                                         secret=world.complaints[2][2])
    assert any(e["kind"] == "ticket.duplicate_linked" and e["original"] == public_code
               for e in view["timeline"])

    # The public duplicate's public page says it ended as a duplicate, never of what
    # (its original is private).
    events = await pool.fetch("SELECT at, kind, data FROM intake.timeline"
                              " WHERE complaint_id = $1 ORDER BY at, id", uuid.UUID(dup2_id))
    public = visibility.public_timeline(events)
    assert public[-1]["kind"] == "ticket.duplicate_linked"
    assert set(public[-1]) == {"at", "kind"}

    mails = {str(r["complaint_id"]): r for r in await pool.fetch(
        "SELECT complaint_id, kind, params FROM intake.email_notifications"
        " WHERE kind = 'ticket.duplicate_linked'")}
    assert set(mails) == {dup1_id, dup2_id}
    texts = MailTexts(world.catalog, intake_url="https://awasi.example")
    public_mail = texts.compose("ticket.duplicate_linked", mails[dup1_id]["params"],
                                locale="id", code=dup1_code, region="MDN",
                                status_url="https://awasi.example/status")
    assert f"https://awasi.example/reports/{public_code}" in public_mail.body
    assert "duplikat" in public_mail.body and public_code in public_mail.subject
    private_mail = texts.compose("ticket.duplicate_linked", mails[dup2_id]["params"],
                                 locale="en", code=dup2_code, region="MDN",
                                 status_url="https://awasi.example/status")
    # The private original: its code (status and deadlines), never a link or its text.
    assert private_code in private_mail.body and "private" in private_mail.body
    assert "/reports/" not in private_mail.body and "rahasia" not in private_mail.body
    # Nothing for the originals' citizens.
    assert not await pool.fetchval(
        "SELECT count(*) FROM intake.email_notifications WHERE complaint_id = ANY($1::uuid[])"
        " AND kind = 'ticket.duplicate_linked'", [uuid.UUID(public_id), uuid.UUID(private_id)])


def _submitted(region: str, category: str, text: str, *, lat: float | None = None,
               lon: float | None = None, minutes_ago: int = 0) -> Envelope:
    payload = ComplaintSubmitted(
        tracking_code="AWS-" + uuid.uuid4().hex[:8].upper(), region=region, category=category,
        description=text, privacy="confidential", reporter_ref="r-" + uuid.uuid4().hex[:12],
        channel="api", submitted_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        location=Location(lat=lat, lon=lon) if lat is not None else None)
    return Envelope.build(payload, complaint_id=str(uuid.uuid4()), producer="intake")


ROAD = "Jalan berlubang besar di Jalan Gatot Subroto depan pasar, sangat berbahaya"


async def test_duplicates_over_the_api_and_on_the_desk(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    settings = router_settings
    bootstrap = settings.kafka_bootstrap or ""
    near = _submitted("MDN", "jalan-rusak", ROAD, lat=3.5900, lon=98.6700, minutes_ago=5)
    far = _submitted("MDN", "jalan-rusak", ROAD, lat=3.5900, lon=98.7700, minutes_ago=4)
    unlike = _submitted("MDN", "jalan-rusak", "Trotoar retak memanjang")
    other_city = _submitted("SRG", "jalan-rusak", ROAD)
    new = _submitted("MDN", "jalan-rusak", "Lubang besar di Jalan Gatot Subroto dekat pasar",
                     lat=3.5901, lon=98.6701)
    triage_a = _submitted("MDN", "lainnya", "Lampu taman kota mati total sejak lama")
    triage_b = _submitted("MDN", "lainnya", "Lampu taman kota mati sudah lama sekali")
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        pupr, dlh = await login(client, "mdn.pupr"), await login(client, "mdn.dlh")
        triage, srg = await login(client, "triage.mdn"), await login(client, "srg.pupr")
        for env in (near, far, unlike, other_city, new, triage_a, triage_b):
            await send(bootstrap, env)
        t = {}
        for name, env in (("near", near), ("far", far), ("unlike", unlike), ("new", new)):
            t[name] = await wait_ticket(client, pupr, env.payload["tracking_code"])
        for name, env in (("triage_a", triage_a), ("triage_b", triage_b)):
            t[name] = await wait_ticket(client, triage, env.payload["tracking_code"],
                                        path="/api/v1/triage")

        # --- the list: alike, same agency and category, the closer first ---------------
        r = await client.get(f"/api/v1/tickets/{t['new']['id']}/duplicates",
                             headers=bearer(pupr))
        body = await r.json()
        assert r.status == 200, body
        codes = [c["tracking_code"] for c in body["candidates"]]
        assert codes == [t["near"]["tracking_code"], t["far"]["tracking_code"]]
        first, second = body["candidates"]
        assert first["distance_km"] < 0.1 and 10 < second["distance_km"] < 12
        assert first["score"] > second["score"]
        assert body["linked"] == [] and body["duplicate_of"] is None
        assert "reporter_ref" not in first and "privacy" not in first
        # Another agency's ticket is not found, the same as none; no token is a 401.
        r = await client.get(f"/api/v1/tickets/{t['new']['id']}/duplicates",
                             headers=bearer(dlh))
        assert r.status == 404
        r = await client.get(f"/api/v1/tickets/{t['new']['id']}/duplicates")
        assert r.status == 401

        # --- bad links: 4xx in the documented shape, nothing written -------------------
        url = f"/api/v1/tickets/{t['new']['id']}/duplicate-of"
        for payload, status, field in (
                ({"original": t["new"]["id"]}, 422, "original"),
                ({"original": other_city.payload["tracking_code"]}, 422, "original"),
                ({"original": ""}, 422, "original"),
                ({"original": t["near"]["id"], "extra": 1}, 422, None)):
            r = await client.post(url, json=payload, headers=bearer(pupr))
            err = await r.json()
            assert r.status == status, err
            assert set(err["error"]) == {"code", "message", "details"}
            if field:
                assert field in str(err["error"]["details"])
        r = await client.post(url, json={"original": t["near"]["tracking_code"]},
                              headers=bearer(srg))
        assert r.status == 404
        ticket = await wait_ticket(client, pupr, new.payload["tracking_code"])
        assert ticket["status"] == "assigned"

        # --- the desk page shows them and links one ------------------------------------
        page = await client.get(f"/tickets/{t['new']['id']}",
                                cookies={SESSION_COOKIE: pupr})
        html = await page.text()
        assert page.status == 200, html
        assert 'data-testid="duplicates"' in html
        assert html.count('data-testid="candidate"') == 2
        assert t["near"]["tracking_code"] in html
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert csrf
        r = await client.post(f"/tickets/{t['new']['id']}/duplicate-of",
                              data={"csrf_token": csrf.group(1),
                                    "original": t["near"]["tracking_code"]},
                              cookies={SESSION_COOKIE: pupr}, allow_redirects=False)
        assert r.status == 303, await r.text()
        ticket = await wait_ticket(client, pupr, new.payload["tracking_code"])
        assert ticket["status"] == "rejected"
        r = await client.get(f"/api/v1/tickets/{t['new']['id']}", headers=bearer(pupr))
        kinds = [e["kind"] for e in (await r.json())["timeline"]]
        assert "ticket.duplicate_linked" in kinds
        page = await client.get(f"/tickets/{t['near']['id']}", cookies={SESSION_COOKIE: pupr})
        html = await page.text()
        assert 'data-testid="linked-here"' in html and new.payload["tracking_code"] in html
        # No cycle: the original cannot now be linked to its (ended) duplicate.
        r = await client.post(f"/api/v1/tickets/{t['near']['id']}/duplicate-of",
                              json={"original": t["new"]["id"]}, headers=bearer(pupr))
        assert r.status == 422
        r = await client.post(url, json={"original": t["far"]["id"]}, headers=bearer(pupr))
        assert r.status == 409 and (await r.json())["error"]["code"] == "invalid_transition"

        # --- the triage officer, on the region's triage queue ---------------------------
        r = await client.get(f"/api/v1/tickets/{t['triage_b']['id']}/duplicates",
                             headers=bearer(triage))
        body = await r.json()
        assert [c["tracking_code"] for c in body["candidates"]] == [
            t["triage_a"]["tracking_code"]]
        r = await client.get(f"/api/v1/tickets/{t['near']['id']}/duplicates",
                             headers=bearer(triage))
        assert r.status == 404  # not in the triage queue
        r = await client.post(f"/api/v1/tickets/{t['triage_b']['id']}/duplicate-of",
                              json={"original": t["triage_a"]["tracking_code"]},
                              headers=bearer(triage))
        body = await r.json()
        assert r.status == 200, body
        assert body["status"] == "rejected" and body["duplicate_of"] == t["triage_a"]["id"]
