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

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from awasi import lifecycle
from tests.support.lifecycle import (
    CITIZEN,
    STAFF,
    citizen,
    drain,
    new_world,
    panel_reopen,
    pool,
    staff,
    triage,
)

__all__ = ["pool"]  # the fixture, used by name

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
