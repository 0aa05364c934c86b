"""Events the router can never apply go to the dead-letter topic with their reason,
write nothing, and hold nothing up: a submission for a region the catalog does not
know, and an event about a complaint that has no ticket."""

from __future__ import annotations

import uuid

import asyncpg

from awasi.events import topics
from awasi.events.payloads import ComplaintWithdrawn, DeadlineBreached
from awasi.settings import Settings
from tests.support.kafka import read_topic
from tests.support.router import (
    create_users,
    event,
    login,
    router_settings,  # noqa: F401 - the fixture
    send,
    submitted,
    wait_ticket,
)
from tests.support.services import running_service


async def test_poison_events_reach_the_dead_letter_topic_with_their_reason(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    settings = router_settings
    bootstrap = settings.kafka_bootstrap or ""
    nowhere = submitted("XXX", "jalan-rusak", "Jalan rusak di kota yang tidak ada.")
    ghost = str(uuid.uuid4())
    withdrawn = event(ComplaintWithdrawn(reason="x"), ghost, "intake")
    breached = event(DeadlineBreached(kind="acknowledge", agency="MDN-PUPR",
                                      due_at=nowhere.occurred_at), ghost, "oversight")
    # Good events on the same partitions, after the poison: they must still be applied.
    after = submitted("MDN", "jalan-rusak", "Jalan rusak sesudahnya.",
                      complaint_id=nowhere.complaint_id)
    after_ghost = submitted("MDN", "jalan-rusak", "Dan satu lagi.", complaint_id=ghost)
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        for env in (nowhere, withdrawn, breached, after):
            await send(bootstrap, env)
        token = await login(client, "mdn.pupr")
        await wait_ticket(client, token, after.payload["tracking_code"])
        dead = await read_topic(bootstrap, topics.DEAD_LETTER, until=lambda ms: len(ms) >= 3,
                                timeout=60)
        # Only now the ghost's submission (on the withdrawal's partition): sent earlier,
        # it could overtake the breach, which travels on another topic.
        await send(bootstrap, after_ghost)
        await wait_ticket(client, token, after_ghost.payload["tracking_code"])
    reasons = {}
    for d in dead:
        value = d["value"]
        for env in (nowhere, withdrawn, breached):
            if str(env.event_id) in value:
                reasons[env.type] = d["reason"]
                assert d["consumer"] == "router"
                assert d["key"] == env.complaint_id
                assert d["_headers"]["reason"] == d["reason"]
    assert len(dead) == 3, [d["reason"] for d in dead]
    assert "unknown region 'XXX'" in reasons["complaint.submitted"]
    assert reasons["complaint.withdrawn"] == f"router: no ticket for complaint {ghost}"
    assert reasons["deadline.breached"] == f"router: no ticket for complaint {ghost}"

    conn = await asyncpg.connect(settings.database_url)
    try:
        # Nothing of the poison stayed: no dedupe record, one ticket each from the good
        # events, nothing on the ticket timelines but their own routing.
        poison_ids = [nowhere.event_id, withdrawn.event_id, breached.event_id]
        assert await conn.fetchval("SELECT count(*) FROM router.processed_events"
                                   " WHERE event_id = ANY($1::uuid[])", poison_ids) == 0
        kinds = await conn.fetch("SELECT t.complaint_id, l.kind FROM router.timeline l"
                                 " JOIN router.tickets t ON t.id = l.ticket_id")
        assert not [k for k in kinds if k["kind"] in ("complaint.withdrawn",
                                                      "deadline.breached")]
    finally:
        await conn.close()
