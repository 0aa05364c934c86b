"""What the citizen sees as the case moves, through the real broker into intake: a
withdrawn or closed complaint stays so whatever arrives late; a transfer and a
reopening change the agency, status and deadlines shown; a withdrawal is refused
once resolved, disputed or already withdrawn, and a refusal writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.payloads import CaseClosed, Deadlines, TicketReopened, TicketTransferred
from awasi.settings import Settings
from awasi.web import keys
from tests.support.intake import resolved_env, routed_env, status_of, submit
from tests.support.kafka import publish
from tests.support.services import running_service
from tests.support.wait import eventually


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", settings.with_(rate_limit_per_minute=10_000)) as c:
        yield c


async def send(client: TestClient, *envelopes: Envelope) -> None:
    bootstrap = client.server.app[keys.SETTINGS].kafka_bootstrap or ""
    for env in envelopes:
        await publish(bootstrap, topics.ROUTER, env.to_bytes(),
                      key=env.complaint_id.encode())


async def settled(client: TestClient, code: str, kind: str, secret: str) -> dict[str, Any]:
    """The status once an event of ``kind`` is on the citizen's timeline (the timeline
    is part of the conversation: it takes the follow-up secret)."""
    async def check() -> dict[str, Any] | None:
        s = await status_of(client, code, secret)
        return s if kind in [e["kind"] for e in s["timeline"]] else None

    return await eventually(check, within=30, what=f"{kind} applied")


async def withdraw(client: TestClient, code: str, secret: str) -> Any:
    return await client.post(f"/api/v1/complaints/{code}/withdraw",
                             json={"secret": secret, "reason": "Sudah selesai sendiri"})


def in_days(n: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=n)


async def test_withdrawn_stays_withdrawn_whatever_arrives_late(client: TestClient) -> None:
    body = await submit(client, privacy="anonymous")
    code, cid = body["tracking_code"], body["complaint_id"]
    assert (await withdraw(client, code, body["secret"])).status == 200
    # The router had not heard yet: its routing, and even a resolution, arrive late.
    await send(client, routed_env(cid, code), resolved_env(cid))
    s = await settled(client, code, "ticket.resolved", body["secret"])
    assert s["status"] == "withdrawn"
    assert not s["can_give_feedback"]


def numbered(env: Envelope, seq: int) -> Envelope:
    """``env`` as its producer numbers it (the complaint's sequence number it knew)."""
    return env.model_copy(update={"seq": seq})


def closing(cid: str, seq: int | None = None) -> Envelope:
    return Envelope.build(CaseClosed(reason="dispute_window_passed"), complaint_id=cid,
                          producer="oversight", seq=seq)


async def test_closed_stays_closed(client: TestClient) -> None:
    body = await submit(client, privacy="anonymous")
    code, cid = body["tracking_code"], body["complaint_id"]
    # Routed, resolved, and the dispute window passed: oversight closes the case (the
    # closing carries the number of the resolution it closes).
    await send(client, numbered(routed_env(cid, code), 2), numbered(resolved_env(cid), 3),
               closing(cid, 3))
    s = await settled(client, code, "case.closed", body["secret"])
    assert s["status"] == "closed"
    # A reopening the router sent before it knew of the resolution arrives late: it is
    # on the timeline, marked ignored, and the complaint stays closed.
    late = Envelope.build(TicketReopened(agency="MDN-INSPEKTORAT", reason="x",
                                         deadlines=Deadlines(resolve_by=in_days(9))),
                          complaint_id=cid, producer="router", seq=2)
    await send(client, late)
    s = await settled(client, code, "ticket.reopened", body["secret"])
    assert s["status"] == "closed"
    assert s["timeline"][-1]["ignored"] in ("stale", "refused")
    assert (await withdraw(client, code, body["secret"])).status == 409


async def test_a_transfer_and_a_reopening_change_what_the_citizen_sees(
        client: TestClient) -> None:
    body = await submit(client, privacy="anonymous")
    code, cid = body["tracking_code"], body["complaint_id"]
    await send(client, routed_env(cid, code, agency="MDN-INSPEKTORAT"))
    s = await settled(client, code, "complaint.routed", body["secret"])
    assert s["agency"]["code"] == "MDN-INSPEKTORAT"

    ack_by, resolve_by = in_days(3), in_days(12)
    transfer = Envelope.build(TicketTransferred(
        from_agency="MDN-INSPEKTORAT", agency="MDN-BKPSDM", reason="internal note",
        deadlines=Deadlines(acknowledge_by=ack_by, resolve_by=resolve_by)),
        complaint_id=cid, producer="router")
    await send(client, transfer)
    s = await settled(client, code, "ticket.transferred", body["secret"])
    assert s["status"] == "assigned"
    assert s["agency"]["code"] == "MDN-BKPSDM"
    assert datetime.fromisoformat(s["deadlines"]["acknowledge_by"]) == ack_by
    assert datetime.fromisoformat(s["deadlines"]["resolve_by"]) == resolve_by
    assert "internal note" not in str(s)  # the agencies' reason stays theirs

    await send(client, resolved_env(cid))
    s = await settled(client, code, "ticket.resolved", body["secret"])
    assert s["status"] == "resolved"
    new_due = in_days(20)
    await send(client, Envelope.build(TicketReopened(
        agency="MDN-BKPSDM", reason="dispute", deadlines=Deadlines(resolve_by=new_due)),
        complaint_id=cid, producer="router"))
    s = await settled(client, code, "ticket.reopened", body["secret"])
    assert s["status"] == "reopened"
    assert s["agency"]["code"] == "MDN-BKPSDM"
    assert datetime.fromisoformat(s["deadlines"]["resolve_by"]) == new_due
    assert not s["can_give_feedback"]


# (A dispute reopens the ticket at once, and the lifecycle table lets the citizen
# withdraw a reopened complaint: awasi/lifecycle.py, docs/LIFECYCLE.md.)
@pytest.mark.parametrize("state", ["resolved", "closed", "withdrawn"])
async def test_withdrawal_is_refused_once_resolved_closed_or_withdrawn(
        client: TestClient, state: str) -> None:
    body = await submit(client, privacy="anonymous")
    code, cid, secret = body["tracking_code"], body["complaint_id"], body["secret"]
    if state == "withdrawn":
        assert (await withdraw(client, code, secret)).status == 200
    else:
        await send(client, routed_env(cid, code), resolved_env(cid))
        await settled(client, code, "ticket.resolved", body["secret"])
        if state == "closed":
            await send(client, closing(cid))
            await settled(client, code, "case.closed", body["secret"])
    pool: asyncpg.Pool = client.server.app[keys.POOL]
    before = await _footprint(pool, cid)
    assert before["status"] == state

    r = await withdraw(client, code, secret)
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "not_allowed_now"
    assert await _footprint(pool, cid) == before  # nothing written


async def _footprint(pool: asyncpg.Pool, cid: str) -> dict[str, Any]:
    return {
        "status": await pool.fetchval("SELECT status FROM intake.complaints"
                                      " WHERE id = $1::uuid", cid),
        "timeline": await pool.fetchval("SELECT count(*) FROM intake.timeline"
                                        " WHERE complaint_id = $1::uuid", cid),
        "outbox": await pool.fetchval("SELECT count(*) FROM intake.outbox WHERE key = $1",
                                      cid),
    }
