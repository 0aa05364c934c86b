"""Following a complaint: the router's and oversight's events change the status the
citizen sees; information, rating, dispute and withdrawal with the follow-up secret;
the real router end to end; accepting while the broker is down."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.payloads import ComplaintRouted, Deadlines
from awasi.settings import Settings
from tests.support.intake import PNG, csrf_of, resolved_env, routed_env, status_of, submit
from tests.support.kafka import publish, read_topic
from tests.support.services import running_service
from tests.support.wait import eventually


@pytest.fixture
def intake_settings(settings: Settings) -> Settings:
    return settings.with_(rate_limit_per_minute=10_000)


@pytest.fixture
async def client(intake_settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", intake_settings) as c:
        yield c


async def test_router_events_update_the_status(client: TestClient,
                                               intake_settings: Settings) -> None:
    body = await submit(client, privacy="anonymous")
    code, cid = body["tracking_code"], body["complaint_id"]
    bootstrap = intake_settings.kafka_bootstrap or ""
    env = routed_env(cid, code)
    await publish(bootstrap, topics.ROUTER, env.to_bytes(), key=cid.encode())
    await publish(bootstrap, topics.ROUTER, env.to_bytes(), key=cid.encode())  # redelivery

    async def routed() -> dict[str, Any] | None:
        s = await status_of(client, code, body["secret"])
        return s if s["status"] == "assigned" else None

    s = await eventually(routed)
    assert s["agency"]["code"] == "MDN-INSPEKTORAT"
    assert "Inspektorat" in s["agency"]["name"]
    assert s["deadlines"]["resolve_by"] is not None
    assert s["overdue"] == {"triage": False, "acknowledge": False, "resolve": False}
    assert [e["kind"] for e in s["timeline"]] == ["submitted", "complaint.routed"]
    assert s["can_give_feedback"] is False

    # Feedback before resolution is refused.
    r = await client.post(f"/api/v1/complaints/{code}/feedback",
                          json={"secret": body["secret"], "rating": 4})
    assert r.status == 409

    await publish(bootstrap, topics.ROUTER, resolved_env(cid).to_bytes(), key=cid.encode())

    async def resolved() -> dict[str, Any] | None:
        s = await status_of(client, code, body["secret"])
        return s if s["status"] == "resolved" else None

    s = await eventually(resolved)
    assert s["can_give_feedback"] and s["can_dispute"]
    assert s["timeline"][-1]["note"] == "Petugas telah diberi sanksi."

    # Wrong secret: 403; right secret: accepted once, published.
    r = await client.post(f"/api/v1/complaints/{code}/feedback",
                          json={"secret": "AAAA-BBBB-CCCC-DDDD", "rating": 2})
    assert r.status == 403
    assert (await r.json())["error"]["code"] == "wrong_secret"
    r = await client.post(f"/api/v1/complaints/{code}/feedback",
                          json={"secret": body["secret"].lower().replace("-", ""),
                                "rating": 2, "comment": "Belum beres", "dispute": True})
    assert r.status == 200, await r.json()
    r = await client.post(f"/api/v1/complaints/{code}/feedback",
                          json={"secret": body["secret"], "rating": 5})
    assert r.status == 409  # one rating per resolution
    s = await status_of(client, code, body["secret"])
    # A dispute reopens the complaint at once, no panel action needed.
    assert s["status"] == "reopened"
    assert s["feedback"]["rating"] == 2 and s["feedback"]["dispute"] is True
    assert not s["can_give_feedback"] and not s["can_dispute"]
    msgs = await read_topic(bootstrap, topics.INTAKE,
                            until=lambda ms: any(m["type"] == "complaint.feedback_given"
                                                 for m in ms))
    fb = next(m for m in msgs if m["type"] == "complaint.feedback_given")
    assert fb["payload"] == {"rating": 2, "comment": "Belum beres", "dispute": True}


async def test_dispute_after_the_window_is_refused(client: TestClient,
                                                   intake_settings: Settings) -> None:
    body = await submit(client)
    code, cid = body["tracking_code"], body["complaint_id"]
    bootstrap = intake_settings.kafka_bootstrap or ""
    past = datetime.now(UTC) - timedelta(hours=1)
    await publish(bootstrap, topics.ROUTER, routed_env(cid, code).to_bytes(), key=cid.encode())
    await publish(bootstrap, topics.ROUTER, resolved_env(cid, past).to_bytes(), key=cid.encode())

    async def resolved() -> dict[str, Any] | None:
        s = await status_of(client, code)
        return s if s["status"] == "resolved" else None

    s = await eventually(resolved)
    assert s["can_give_feedback"] and not s["can_dispute"]
    r = await client.post(f"/api/v1/complaints/{code}/feedback",
                          json={"secret": body["secret"], "dispute": True, "rating": 1})
    assert r.status == 409
    r = await client.post(f"/api/v1/complaints/{code}/feedback",
                          json={"secret": body["secret"], "rating": 5})
    assert r.status == 200


async def test_add_info_and_withdraw(client: TestClient, intake_settings: Settings) -> None:
    body = await submit(client, privacy="confidential")
    code = body["tracking_code"]
    r = await client.post(f"/api/v1/complaints/{code}/info",
                          json={"secret": body["secret"], "message": "Kejadian pukul 10.00",
                                "photos": [{"content_type": "image/png",
                                            "data": base64.b64encode(PNG).decode()}]})
    assert r.status == 200, await r.json()
    r = await client.post(f"/api/v1/complaints/{code}/info",
                          json={"secret": "wrong", "message": "x"})
    assert r.status == 403
    r = await client.post(f"/api/v1/complaints/{code}/info", json={"secret": body["secret"]})
    assert r.status == 422
    r = await client.post("/api/v1/complaints/MDN-0000-0000/info",
                          json={"secret": body["secret"], "message": "x"})
    assert r.status == 404
    r = await client.post(f"/api/v1/complaints/{code}/withdraw",
                          json={"secret": body["secret"], "reason": "Sudah selesai"})
    assert r.status == 200
    r = await client.post(f"/api/v1/complaints/{code}/info",
                          json={"secret": body["secret"], "message": "lagi"})
    assert r.status == 409
    s = await status_of(client, code, body["secret"])
    assert s["status"] == "withdrawn"
    assert [e["kind"] for e in s["timeline"]] == ["submitted", "info_added", "withdrawn"]
    msgs = await read_topic(intake_settings.kafka_bootstrap or "", topics.INTAKE,
                            until=lambda ms: len(ms) >= 3)
    assert [m["type"] for m in msgs] == ["complaint.submitted", "complaint.info_added",
                                         "complaint.withdrawn"]
    assert len(msgs[1]["payload"]["photo_ids"]) == 1


async def test_unknown_tracking_code(client: TestClient) -> None:
    r = await client.get("/api/v1/complaints/MDN-ZZZZ-ZZZZ")
    assert r.status == 404
    assert (await r.json())["error"]["code"] == "unknown_complaint"


async def test_tracking_code_is_forgiving_when_typed(client: TestClient) -> None:
    body = await submit(client)
    code = body["tracking_code"]
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    s = await status_of(client, typed)
    assert s["tracking_code"] == code


async def test_accepts_complaints_while_the_broker_is_down(
        client: TestClient, broker: Any, intake_settings: Settings) -> None:
    broker.kill()
    body = await submit(client, privacy="anonymous")
    status = await status_of(client, body["tracking_code"])
    assert status["status"] == "submitted"
    conn = await asyncpg.connect(intake_settings.database_url)
    try:
        unsent = await conn.fetchval("SELECT count(*) FROM intake.outbox WHERE sent_at IS NULL")
    finally:
        await conn.close()
    assert unsent == 1  # waiting in the outbox for the broker to come back


async def test_oversight_and_info_request_events(client: TestClient,
                                                 intake_settings: Settings) -> None:
    from awasi.events.payloads import (
        CaseEscalated,
        DeadlineBreached,
        DeadlineWarning,
        FindingRecorded,
        TicketAcknowledged,
        TicketInfoRequested,
    )

    body = await submit(client, privacy="confidential")
    code, cid = body["tracking_code"], body["complaint_id"]
    bootstrap = intake_settings.kafka_bootstrap or ""
    past = datetime.now(UTC) - timedelta(hours=2)
    routed = Envelope.build(ComplaintRouted(
        tracking_code=code, region="MDN", category="asn-pungli", agency="MDN-INSPEKTORAT",
        rule="category:MDN:asn-pungli",
        deadlines=Deadlines(acknowledge_by=past, resolve_by=past + timedelta(days=30))),
        complaint_id=cid, producer="router")

    def env(payload: Any, producer: str) -> bytes:
        return Envelope.build(payload, complaint_id=cid, producer=producer).to_bytes()

    await publish(bootstrap, topics.ROUTER, routed.to_bytes(), key=cid.encode())

    # Oversight only ever speaks of a routed complaint (it reads the router's topic),
    # and the two topics are read by separate tasks: publishing both at once let the
    # breach and escalation overtake the routing, which then no longer applied.
    async def routed_first() -> dict[str, Any] | None:
        s = await status_of(client, code, body["secret"])
        return s if s["status"] == "assigned" else None

    await eventually(routed_first)
    await publish(bootstrap, topics.OVERSIGHT, env(DeadlineWarning(
        kind="acknowledge", agency="MDN-INSPEKTORAT", due_at=past), "oversight"), cid.encode())
    await publish(bootstrap, topics.OVERSIGHT, env(DeadlineBreached(
        kind="acknowledge", agency="MDN-INSPEKTORAT", due_at=past), "oversight"), cid.encode())
    await publish(bootstrap, topics.OVERSIGHT, env(CaseEscalated(
        level=1, kind="acknowledge", agency="MDN-INSPEKTORAT"), "oversight"), cid.encode())
    await publish(bootstrap, topics.OVERSIGHT, env(FindingRecorded(
        outcome="maladministration", maladministration_type="undue_delay",
        recommendation="Internal note for the panel only", published=False), "oversight"),
        cid.encode())
    await publish(bootstrap, topics.OVERSIGHT, env(FindingRecorded(
        outcome="maladministration", maladministration_type="undue_delay",
        recommendation="Percepat penanganan", published=True), "oversight"), cid.encode())

    async def settled() -> dict[str, Any] | None:
        s = await status_of(client, code, body["secret"])
        kinds = [e["kind"] for e in s["timeline"]]
        return s if (kinds.count("finding.recorded") == 1 and "case.escalated" in kinds) else None

    s = await eventually(settled)
    kinds = [e["kind"] for e in s["timeline"]]
    assert "deadline.warning" not in kinds  # staff reminders stay internal
    assert s["overdue"]["acknowledge"] is True and s["overdue"]["resolve"] is False
    assert "Internal note" not in json.dumps(s)
    finding = next(e for e in s["timeline"] if e["kind"] == "finding.recorded")
    assert finding["recommendation"] == "Percepat penanganan"
    page = await (await client.get(f"/status/{code}")).text()
    assert "terlambat" in page  # the overdue acknowledgement, on the citizen's page
    assert "WIB" in page  # deadlines in the region's own time zone
    # The code alone shows no conversation; the secret, typed into the page, does.
    assert "Percepat penanganan" not in page and "Internal note" not in page
    r = await client.post(f"/status/{code}/unlock",
                          data={"csrf": csrf_of(page), "secret": body["secret"]})
    page = await r.text()
    assert r.status == 200
    assert "Percepat penanganan" in page and "Internal note" not in page
    # The timeline's times too are in the region's time, not UTC's ISO form.
    timeline = page[page.index('data-testid="timeline"'):]
    assert "WIB" in timeline[:timeline.index("</ol>")]
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", page)

    # Acknowledged: no longer overdue on that clock. Then a question, answered.
    await publish(bootstrap, topics.ROUTER, env(TicketAcknowledged(
        agency="MDN-INSPEKTORAT", deadlines=Deadlines()), "router"), cid.encode())
    await publish(bootstrap, topics.ROUTER, env(TicketInfoRequested(
        agency="MDN-INSPEKTORAT", question="Kapan kejadiannya?",
        paused_at=datetime.now(UTC)), "router"), cid.encode())

    async def asked() -> dict[str, Any] | None:
        s = await status_of(client, code, body["secret"])
        return s if s["status"] == "waiting_info" else None

    s = await eventually(asked)
    # Paused: waiting for the citizen, and nothing is overdue while the clock stands.
    assert s["paused"] is True
    assert s["overdue"] == {"triage": False, "acknowledge": False, "resolve": False}
    assert s["timeline"][-1]["question"] == "Kapan kejadiannya?"
    r = await client.post(f"/api/v1/complaints/{code}/info",
                          json={"secret": body["secret"], "message": "Senin pagi."})
    assert r.status == 200
    assert (await r.json())["status"] == "acknowledged"

    # The router resumes the clock with the deadlines moved by the pause: the citizen
    # sees those, not the stale ones.
    from awasi.events.payloads import TicketClockResumed

    moved = (datetime.now(UTC) + timedelta(days=45)).replace(microsecond=0)
    await publish(bootstrap, topics.ROUTER, env(TicketClockResumed(
        agency="MDN-INSPEKTORAT", resumed_at=datetime.now(UTC),
        deadlines=Deadlines(resolve_by=moved)), "router"), cid.encode())

    async def resumed() -> dict[str, Any] | None:
        s = await status_of(client, code, body["secret"])
        due = s["deadlines"]["resolve_by"]
        return s if due and datetime.fromisoformat(due) == moved else None

    s = await eventually(resumed)
    assert s["status"] == "acknowledged" and s["paused"] is False
    assert s["timeline"][-1]["kind"] == "ticket.clock_resumed"


async def test_a_late_routing_never_revives_a_withdrawn_complaint(
        client: TestClient, intake_settings: Settings) -> None:
    body = await submit(client)
    code, cid = body["tracking_code"], body["complaint_id"]
    r = await client.post(f"/api/v1/complaints/{code}/withdraw",
                          json={"secret": body["secret"]})
    assert r.status == 200
    # The router routed it before it heard of the withdrawal (an older fact, on
    # another topic): recorded, and ignored.
    late = routed_env(cid, code).model_copy(update={"seq": 2})
    await publish(intake_settings.kafka_bootstrap or "", topics.ROUTER, late.to_bytes(),
                  key=cid.encode())

    async def recorded() -> dict[str, Any] | None:
        s = await status_of(client, code, body["secret"])
        return s if s["timeline"][-1]["kind"] == "complaint.routed" else None

    s = await eventually(recorded)
    assert s["status"] == "withdrawn"
    assert s["timeline"][-1]["ignored"] in ("stale", "refused")
    assert s["agency"] is None and s["deadlines"]["resolve_by"] is None


async def test_with_the_real_router(intake_settings: Settings) -> None:
    """Intake and the router together: a submission is routed by rule and the citizen
    sees the agency and the deadlines."""
    async with running_service("intake", intake_settings) as client, \
            running_service("router", intake_settings):
        body = await submit(client, privacy="confidential")

        async def routed() -> dict[str, Any] | None:
            s = await status_of(client, body["tracking_code"])
            return s if s["status"] == "assigned" else None

        s = await eventually(routed, within=30)
        assert s["agency"]["code"] == "MDN-INSPEKTORAT"
        assert s["deadlines"]["acknowledge_by"] and s["deadlines"]["resolve_by"]
