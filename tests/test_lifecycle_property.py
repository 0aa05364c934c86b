"""The one lifecycle, driven from all sides (hypothesis): citizens, agency staff and
the panel act on a few complaints while the three topics' events reach the three
services' real handlers in a random interleaving (each complaint's events in order on
their own topic, any order across topics, with redeliveries), against the real
database. Once every event is in, intake, the router and oversight agree on each
complaint's status and deadlines, and a withdrawn complaint stays withdrawn.

No broker: the outboxes are the topics (each service's ``outbox`` rows in id order
are what its relay would publish), and each delivery does what the idempotent
consumer does (the dedupe record and the effect in one transaction).
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from awasi import lifecycle
from awasi.catalog import Catalog
from awasi.events.envelope import Envelope
from awasi.identity import User
from awasi.settings import Settings
from awasi.web.errors import ApiError
from services.intake import consumer as intake_consumer
from services.intake import domain as intake
from services.oversight import panel
from services.oversight.clock import ManualClock
from services.oversight.domain import Context
from services.oversight.domain import apply_event as oversight_apply
from services.oversight.scheduler import Scheduler
from services.router import consumer as router_consumer
from services.router import domain as router
from tests.test_oversight_support import demo_catalog, make_ctx, open_pool

TOPICS = ("intake", "router", "oversight")
# Who reads which topic (as in each service's app.py).
READS = {"intake": ("router", "oversight"), "router": ("intake", "oversight"),
         "oversight": ("intake", "router", "oversight")}
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
    if reader == "intake":
        return intake_consumer.accepts, intake_consumer.handle

    if reader == "router":
        async def route(conn: asyncpg.Connection, env: Envelope) -> None:
            await router.apply_event(conn, world.catalog, env)
        return router_consumer.accepts, route

    async def oversee(conn: asyncpg.Connection, env: Envelope) -> None:
        await oversight_apply(conn, world.ctx, env)
    return (lambda _e: True), oversee


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


actions = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, 10**6)),
    st.tuples(st.just("redeliver"), st.integers(0, 10**6)),
    st.tuples(st.just("citizen"), st.sampled_from(CITIZEN)),
    st.tuples(st.just("staff"), st.sampled_from(STAFF)),
    st.tuples(st.just("staff"), st.sampled_from(STAFF)),
    st.tuples(st.just("panel"), st.just("reopen")),
    st.tuples(st.just("triage"), st.sampled_from(("route", "route", "reject"))),
    # Days pass: oversight's scheduler fires warnings, breaches, escalations, and
    # closes cases whose dispute window passed.
    st.tuples(st.just("time"), st.integers(1, 20)),
)


@given(script=st.lists(st.tuples(actions, st.integers(0, 1)), min_size=5, max_size=40),
       seed=st.integers(0, 2**32 - 1))
# Deterministic, and no shrinking: an example costs a few hundred transactions, and
# shrinking one would outlast the test's timeout. A failure prints its script.
@hsettings(max_examples=30, deadline=None, derandomize=True,
           phases=[Phase.explicit, Phase.reuse, Phase.generate],
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
async def test_three_services_agree_whatever_the_order(
        pool: asyncpg.Pool, database_url: str,
        script: list[tuple[tuple[str, Any], int]], seed: int) -> None:
    world, clock, scheduler = await new_world(pool, database_url, seed)

    for (kind, arg), which in script:
        cid = world.complaints[which][0]
        if kind in ("deliver", "redeliver"):
            todo = world.pending() if kind == "deliver" else [
                k for k in world.cursor if world.cursor[k]]
            if todo:
                reader, topic, c = todo[arg % len(todo)]
                await world.deliver(reader, topic, c, again=kind == "redeliver")
        elif kind == "citizen":
            await citizen(world, arg, cid)
        elif kind == "staff":
            await staff(world, arg, cid)
        elif kind == "triage":
            await triage(world, arg, cid)
        elif kind == "time":
            clock.set(clock.now() + timedelta(days=arg))
            await scheduler.sweep()
        else:
            await panel_reopen(world, cid)
        await world.publish()

    await drain(world)

    for cid, code, _ in world.complaints:
        i = await pool.fetchrow("SELECT status, resolve_by FROM intake.complaints"
                                " WHERE id = $1", uuid.UUID(cid))
        r = await pool.fetchrow("SELECT status, resolve_by, agency FROM router.tickets"
                                " WHERE complaint_id = $1", cid)
        o = await pool.fetchrow("SELECT status, resolve_by, agency FROM oversight.cases"
                                " WHERE complaint_id = $1", cid)
        assert i["status"] == r["status"] == o["status"], (code, i, r, o)
        assert i["status"] in lifecycle.STATUSES
        if cid in world.withdrawn:
            assert i["status"] == "withdrawn"
        if i["status"] in lifecycle.WITH_AGENCY and i["status"] != "waiting_info":
            # The deadlines the citizen sees are the router's (pauses included).
            assert i["resolve_by"] == r["resolve_by"] == o["resolve_by"], (code, i, r, o)
            assert r["agency"] == o["agency"]
