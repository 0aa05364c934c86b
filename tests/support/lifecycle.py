"""The lifecycle's test world: a few complaints, the three services' real handlers
(wired as their apps wire them), the outboxes as the three topics, and citizens,
staff, triage and the panel acting on them. Used by tests/test_lifecycle_property.py
(random interleavings) and tests/test_lifecycle_rules.py (one rule each).

No broker: each service's ``outbox`` rows in id order are what its relay would
publish, and each delivery does what the idempotent consumer does (the dedupe record
and the effect in one transaction).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import pytest

from awasi.catalog import Catalog
from awasi.events.envelope import Envelope
from awasi.identity import User
from awasi.settings import Settings
from awasi.web.errors import ApiError
from services.intake import app as intake_app
from services.intake import domain as intake
from services.oversight import app as oversight_app
from services.oversight import panel
from services.oversight.clock import ManualClock
from services.oversight.domain import Context
from services.oversight.scheduler import Scheduler
from services.router import app as router_app
from services.router import domain as router
from tests.support.oversight import demo_catalog, make_ctx, open_pool

TOPICS = ("intake", "router", "oversight")
# Who reads which topic: each service's app (``TOPICS_READ``), by schema name.
READS = {reader: tuple(t.split(".")[1] for t in app.TOPICS_READ)
         for reader, app in (("intake", intake_app), ("router", router_app),
                             ("oversight", oversight_app))}
CITIZEN = ("add_info", "rate", "dispute", "withdraw")
STAFF = ("acknowledge", "request_info", "respond", "resolve", "transfer")
AGENCIES = ("MDN-INSPEKTORAT", "MDN-BKPSDM")


@dataclass
class World:
    pool: asyncpg.Pool
    catalog: Catalog
    settings: Settings
    ctx: Context
    rng: random.Random
    # Per topic: the envelopes published so far, in outbox order.
    topics: dict[str, list[Envelope]] = field(default_factory=lambda: {t: [] for t in TOPICS})
    seen: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOPICS, 0))
    # Per (consumer, topic, complaint): how many of that complaint's events it has had.
    cursor: dict[tuple[str, str, str], int] = field(default_factory=dict)
    complaints: list[tuple[str, str, str]] = field(default_factory=list)  # id, code, secret
    withdrawn: set[str] = field(default_factory=set)
    users: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def publish(self) -> None:
        """Move new outbox rows onto their topics (what the relays do)."""
        for topic in TOPICS:
            rows = await self.pool.fetch(
                f'SELECT envelope FROM "{topic}".outbox ORDER BY id OFFSET $1',
                self.seen[topic])
            self.seen[topic] += len(rows)
            self.topics[topic] += [Envelope.model_validate(r["envelope"]) for r in rows]

    def stream(self, topic: str, complaint: str) -> list[Envelope]:
        return [e for e in self.topics[topic] if e.complaint_id == complaint]

    def pending(self) -> list[tuple[str, str, str]]:
        """Every (consumer, topic, complaint) with an event not yet delivered."""
        out = []
        for reader, topics in READS.items():
            for topic in topics:
                for cid, _, _ in self.complaints:
                    if self.cursor.get((reader, topic, cid), 0) < len(self.stream(topic, cid)):
                        out.append((reader, topic, cid))
        return out

    async def deliver(self, reader: str, topic: str, cid: str, again: bool = False) -> None:
        stream = self.stream(topic, cid)
        done = self.cursor.get((reader, topic, cid), 0)
        if again:
            if done == 0:
                return
            env = stream[self.rng.randrange(done)]  # a redelivery of an applied event
        else:
            env = stream[done]
            self.cursor[(reader, topic, cid)] = done + 1
        await consume(self, reader, env)
        await self.publish()


def handler(world: World, reader: str) -> tuple[Callable[[Envelope], bool],
                                                Callable[[asyncpg.Connection, Envelope],
                                                         Awaitable[None]]]:
    """``reader``'s filter and handler, wired as its app wires them."""
    if reader == "intake":
        handle, accepts = intake_app.event_handling(world.settings)
        return accepts, handle
    if reader == "router":
        handle, accepts = router_app.event_handling(world.catalog)
        return accepts, handle
    return (lambda _e: True), oversight_app.event_handler(world.ctx)


async def consume(world: World, reader: str, env: Envelope) -> None:
    """What ``IdempotentConsumer`` does with one event: the dedupe record and the
    effect in one transaction; a repeat changes nothing."""
    accepts, handle = handler(world, reader)
    if not accepts(env):
        return
    async with world.pool.acquire() as conn, conn.transaction():
        new = await conn.fetchval(
            f'INSERT INTO "{reader}".processed_events (consumer, event_id) VALUES ($1, $2)'
            " ON CONFLICT DO NOTHING RETURNING 1", reader, env.event_id)
        if new:
            await handle(conn, env)


async def citizen(world: World, action: str, cid: str) -> None:
    _, code, secret = next(c for c in world.complaints if c[0] == cid)
    try:
        if action == "add_info":
            await intake.add_info(world.pool, code, intake.InfoIn(secret=secret,
                                                                  message="Jawaban warga"))
        elif action == "rate":
            await intake.give_feedback(world.pool, world.catalog, code,
                                       intake.FeedbackIn(secret=secret, rating=3))
        elif action == "dispute":
            await intake.give_feedback(world.pool, world.catalog, code,
                                       intake.FeedbackIn(secret=secret, dispute=True))
        else:
            await intake.withdraw(world.pool, code, intake.WithdrawIn(secret=secret))
            world.withdrawn.add(cid)
    except ApiError:
        return  # not allowed in this status: refused, nothing written


async def staff(world: World, action: str, cid: str) -> None:
    now = datetime.now(UTC)
    async with world.pool.acquire() as conn:
        ticket = await conn.fetchrow("SELECT id, agency FROM router.tickets"
                                     " WHERE complaint_id = $1", cid)
    if ticket is None or ticket["agency"] is None:
        return
    user = User(id=next(world.users), username="petugas", display_name="Petugas",
                role="staff", agency=ticket["agency"], region="MDN")
    tid = str(ticket["id"])
    try:
        async with world.pool.acquire() as conn, conn.transaction():
            if action == "acknowledge":
                await router.acknowledge(conn, world.catalog, user, tid, now)
            elif action == "request_info":
                await router.request_info(conn, world.catalog, user, tid, "Di mana?", now)
            elif action == "respond":
                await router.respond(conn, world.catalog, user, tid, "Sedang dicek", now)
            elif action == "resolve":
                await router.resolve(conn, world.catalog, user, tid, "Selesai", now)
            else:
                other = next(a for a in AGENCIES if a != ticket["agency"])
                await router.transfer(conn, world.catalog, user, tid, other, "Bukan kami", now)
    except ApiError:
        return


async def triage(world: World, action: str, cid: str) -> None:
    """The region's triage officer routes or rejects a ticket of the triage queue."""
    officer = User(id=next(world.users), username="verifikator", display_name="Verifikator",
                   role="triage", agency=None, region="MDN")
    async with world.pool.acquire() as conn:
        tid = await conn.fetchval("SELECT id FROM router.tickets WHERE complaint_id = $1", cid)
    if tid is None:
        return
    try:
        async with world.pool.acquire() as conn, conn.transaction():
            if action == "route":
                await router.route_by_hand(conn, world.catalog, officer, str(tid),
                                           AGENCIES[1], datetime.now(UTC))
            else:
                await router.reject_by_hand(conn, world.catalog, officer, str(tid), "spam",
                                            "Bukan pengaduan", None, datetime.now(UTC))
    except ApiError:
        return


async def panel_reopen(world: World, cid: str) -> None:
    _, code, _ = next(c for c in world.complaints if c[0] == cid)
    try:
        await panel.reopen(world.pool, code, panel.ReopenIn(reason="Periksa lagi"),
                           "pengawas", datetime.now(UTC))
    except ApiError:
        return


async def new_world(pool: asyncpg.Pool, database_url: str, seed: int = 0,
                    complaints: int = 2) -> tuple[World, ManualClock, Scheduler]:
    """A world with ``complaints`` fresh complaints submitted through intake."""
    settings = Settings().with_(database_url=database_url)
    ctx, clock = make_ctx(ManualClock(datetime.now(UTC)))
    world = World(pool=pool, catalog=demo_catalog(), settings=settings, ctx=ctx,
                  rng=random.Random(seed))
    for _ in range(complaints):
        receipt = await intake.submit_complaint(pool, world.catalog, settings,
                                                intake.SubmitCommand(
                                                    region="MDN", category="asn-pungli",
                                                    description="Pungutan liar di kantor"
                                                                " kelurahan."))
        world.complaints.append((receipt.complaint_id, receipt.tracking_code, receipt.secret))
    await world.publish()
    return world, clock, Scheduler(pool, ctx.catalog, clock)


async def drain(world: World) -> None:
    """Let every event in, in a random order (reactions produce more events), with
    some redeliveries."""
    await world.publish()
    while todo := world.pending():
        reader, topic, c = world.rng.choice(todo)
        await world.deliver(reader, topic, c)
        if world.rng.random() < 0.1:
            await world.deliver(reader, topic, c, again=True)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await open_pool(database_url)
    try:
        yield p
    finally:
        await p.close()
