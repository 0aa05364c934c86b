"""The statistics' rollups equal an aggregation from scratch.

The lifecycle's test world (tests/support/lifecycle.py: the three services' real
handlers, citizens, staff, triage and the panel acting, events delivered in a random
order with redeliveries, days passing so the scheduler fires breaches, level-2
escalations and closings) runs a random mix of actions; at several points the rollups
the consumer and the scheduler kept (deltas, and after compaction) must equal what
``rollups.rebuild`` computes from the cases and deadlines alone (run in a transaction
that is rolled back, so the incremental state carries on). The medians the statistics
show from the histograms are checked against percentile_cont over the cases, within
the stated bucket width.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from awasi.cli import main as awasi_main
from awasi.events.envelope import Envelope
from services.oversight import rollups, stats
from services.oversight.scheduler import Scheduler
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
from tests.support.oversight import (
    MONDAY_9,
    OTHER_AGENCY,
    acknowledged,
    feed,
    feedback,
    make_ctx,
    reopened,
    resolved,
    routed,
    submitted,
    transferred,
    withdrawn,
)

__all__ = ["pool"]  # the fixture, used by name


async def rollup_state(conn: asyncpg.Connection) -> dict[str, dict[tuple[Any, ...], tuple]]:
    """Every rollup table summed per key (deltas and compacted rows together), zero
    keys left out: what a reader sees."""
    out: dict[str, dict[tuple[Any, ...], tuple]] = {}
    for table in rollups.TABLES:
        keys = rollups.KEYS[table]
        values = ("n",) if table.startswith("stats_hist") else rollups.COUNTERS
        rows = await conn.fetch(
            f"SELECT {', '.join(keys)}, {', '.join(f'sum({v})::bigint AS {v}' for v in values)}"
            f" FROM oversight.{table} GROUP BY {', '.join(keys)}")
        out[table] = {tuple(r[k] for k in keys): tuple(r[v] for v in values)
                      for r in rows if any(r[v] for v in values)}
    return out


async def from_scratch(pool: asyncpg.Pool, catalog: Any) -> dict[str, dict[tuple, tuple]]:
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            await rollups.rebuild(conn, catalog)
            # The rebuild leaves only compacted rows.
            assert not await conn.fetchval(
                "SELECT count(*) FROM oversight.stats_monthly WHERE NOT compact")
            return await rollup_state(conn)
        finally:
            await tr.rollback()


async def assert_rollups_exact(pool: asyncpg.Pool, catalog: Any, what: str) -> None:
    async with pool.acquire() as conn:
        kept = await rollup_state(conn)
    scratch = await from_scratch(pool, catalog)
    for table in rollups.TABLES:
        assert kept[table] == scratch[table], f"{table} differs {what}"


async def test_rollups_equal_a_from_scratch_aggregation_after_a_realistic_mix(
        pool: asyncpg.Pool, database_url: str) -> None:
    world, clock, scheduler = await new_world(pool, database_url, seed=18, complaints=12)
    rng = random.Random(18)
    ids = [c[0] for c in world.complaints]
    checks = 0
    for step in range(260):
        cid = rng.choice(ids)
        roll = rng.random()
        if roll < 0.45:
            if todo := world.pending():
                reader, topic, c = rng.choice(todo)
                await world.deliver(reader, topic, c, again=rng.random() < 0.1)
        elif roll < 0.62:
            await staff(world, rng.choice(STAFF), cid)
        elif roll < 0.74:
            await citizen(world, rng.choice(("rate", "rate", "dispute", "add_info",
                                             *CITIZEN)), cid)
        elif roll < 0.80:
            await triage(world, rng.choice(("route", "route", "reject")), cid)
        elif roll < 0.84:
            await panel_reopen(world, cid)
        else:
            clock.set(clock.now() + timedelta(days=rng.randint(1, 12)))
            await scheduler.sweep()
        await world.publish()
        # Often: a case is briefly in states that the next sweep or delivery ends
        # (a fresh deadline after a breach, a resolution not yet rated).
        if step % 5 == 4:
            await assert_rollups_exact(pool, world.catalog, f"at step {step}")
            checks += 1
        if step % 40 == 39:
            async with pool.acquire() as conn, conn.transaction():
                await rollups.compact(conn)
            async with pool.acquire() as conn:
                for table in rollups.TABLES:
                    # Retention of the deltas: one row per key is left.
                    assert not await conn.fetchval(
                        f"SELECT count(*) FROM oversight.{table} WHERE NOT compact")
            await assert_rollups_exact(pool, world.catalog, f"after compaction at {step}")
    await drain(world)
    clock.set(clock.now() + timedelta(days=40))
    await scheduler.sweep()
    await drain(world)
    await assert_rollups_exact(pool, world.catalog, "once every event is in")
    assert checks == 52

    # The mix did reach the figures the rollups keep (else the test proves little).
    async with pool.acquire() as conn:
        totals = await conn.fetchrow(
            "SELECT sum(received) AS received, sum(resolved) AS resolved,"
            " sum(breaches) AS breaches, sum(disputes) AS disputes, sum(rating_n) AS rated,"
            " sum(ack_n) AS acked FROM oversight.stats_totals WHERE region <> ''")
        assert totals["received"] == len(ids)
        assert totals["resolved"] and totals["breaches"] and totals["rated"]
        assert totals["acked"]

        # The statistics read them: counts equal the cases', medians within a bucket.
        s = await stats.compute(conn, world.catalog, clock.now())
        region = next(r for r in s.regions if r["region"] == "MDN")
        exact = await conn.fetchrow(
            "SELECT count(*) AS received,"
            f" count(*) FILTER (WHERE {stats.RESOLVED_SQL}) AS resolved,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM"
            "   acknowledged_at - routed_at) / 3600.0) FILTER (WHERE acknowledged_at IS NOT NULL"
            "   AND routed_at IS NOT NULL) AS ack_median"
            " FROM oversight.cases WHERE region = 'MDN'")
        assert region["received"] == exact["received"]
        assert region["resolved"] == exact["resolved"]
        shown = rollups.median(
            (r["bucket"], r["n"]) for r in await conn.fetch(
                "SELECT bucket, sum(n)::bigint AS n FROM oversight.stats_hist_totals"
                " WHERE region = 'MDN' AND measure = 'ack' GROUP BY 1 ORDER BY 1"))
        assert shown is not None and exact["ack_median"] is not None
        assert 0 <= float(exact["ack_median"]) - shown < 0.1 + 1e-9
        # The statistics compute the same median in SQL (rollups.MEDIANS_SQL).
        assert region["median_hours_to_acknowledge"]["n"] == sum(
            r["n"] for r in await conn.fetch(
                "SELECT sum(n) AS n FROM oversight.stats_hist_totals"
                " WHERE region = 'MDN' AND measure = 'ack'"))
        in_sql = await conn.fetch(rollups.MEDIANS_SQL.format(
            source="SELECT region AS key, measure, bucket, sum(n) AS n"
                   " FROM oversight.stats_hist_totals GROUP BY 1, 2, 3 HAVING sum(n) > 0"))
        assert {(r["key"], r["measure"]): float(r["median"]) for r in in_sql}[
            ("MDN", "ack")] == shown


def case_script(rng: random.Random, cid: str, start: Any) -> list[Envelope]:
    """One case's events in order, at explicit times: late and on-time resolutions,
    transfers and reopenings with fresh deadlines (after a breach, too), ratings,
    disputes, withdrawals."""
    h = timedelta(hours=1)
    ack_by, resolve_by = start + 48 * h, start + rng.choice((30, 120, 300)) * h
    out = [submitted(cid, start), routed(cid, start + rng.randint(0, 5) * h, ack_by,
                                         resolve_by)]
    t = start + rng.randint(1, 80) * h + rng.randint(0, 3599) * timedelta(seconds=1)
    if rng.random() < 0.15:
        return [*out, withdrawn(cid, t)]
    if rng.random() < 0.3:
        # A transfer, perhaps after the first resolution deadline fired: fresh ones.
        t += rng.randint(0, 200) * h
        out.append(transferred(cid, t, t + 48 * h, t + 150 * h))
        agency = OTHER_AGENCY
    else:
        agency = "MDN-DISDUKCAPIL"
    if rng.random() < 0.8:
        out.append(acknowledged(cid, t, None, agency=agency))
        t += rng.randint(1, 400) * h + rng.randint(0, 3599) * timedelta(seconds=1)
        if rng.random() < 0.8:
            out.append(resolved(cid, t, agency=agency))
            if rng.random() < 0.7:
                t += h
                dispute = rng.random() < 0.25
                out.append(feedback(cid, t, rng.randint(1, 5), dispute=dispute))
                if dispute:
                    out.append(reopened(cid, t + h, t + 200 * h, agency=agency))
    return out


async def test_rollups_stay_exact_through_deadlines_transfers_and_disputes(
        pool: asyncpg.Pool) -> None:
    """Explicit times (late resolutions, breaches followed by fresh deadlines, level-2
    escalations, closings), cases interleaved with the scheduler's sweeps and the
    oversight events it writes fed back as the consumer would."""
    ctx, clock = make_ctx()
    scheduler = Scheduler(pool, ctx.catalog, clock)
    rng = random.Random(1806)
    scripts = [case_script(rng, f"roll{i:04d}", MONDAY_9 + i * timedelta(hours=7))
               for i in range(40)]
    fed_outbox = 0
    checks = 0
    while any(scripts):
        s = rng.choice([s for s in scripts if s])
        env = s.pop(0)
        if env.occurred_at > clock.now():
            clock.set(env.occurred_at)
            await scheduler.sweep()
            rows = await pool.fetch("SELECT envelope FROM oversight.outbox ORDER BY id"
                                    " OFFSET $1", fed_outbox)
            fed_outbox += len(rows)
            await feed(pool, ctx, *(Envelope.model_validate(r["envelope"]) for r in rows))
        await feed(pool, ctx, env)
        if rng.random() < 0.1:
            await assert_rollups_exact(pool, ctx.catalog, f"at {clock.now()}")
            checks += 1
    await assert_rollups_exact(pool, ctx.catalog, "at the end")
    async with pool.acquire() as conn:
        t = await conn.fetchrow(
            "SELECT sum(on_time) AS on_time, sum(resolved) AS resolved, sum(due_n) AS due,"
            " sum(breaches) AS breaches, sum(escalations2) AS e2, sum(disputes) AS disputes,"
            " sum(rating_n) AS rated FROM oversight.stats_totals WHERE region <> ''")
    # The mix reached every kind of figure, late resolutions among them.
    assert 0 < t["on_time"] < t["resolved"] < t["due"]
    assert t["breaches"] and t["e2"] and t["disputes"] and t["rated"]
    assert checks >= 5


async def test_backfill_after_the_migration_computes_the_rollups_of_existing_cases(
        pool: asyncpg.Pool, database_url: str) -> None:
    """Cases on record before the rollups existed: the start after the migration
    (``rebuild_if_asked``) computes them once; a second start does nothing."""
    world, clock, scheduler = await new_world(pool, database_url, seed=3, complaints=6)
    for cid, _, _ in world.complaints:
        await drain(world)
        await staff(world, "acknowledge", cid)
        await staff(world, "resolve", cid)
    await drain(world)
    async with pool.acquire() as conn:
        expected = await rollup_state(conn)
        # As if the rollups had never been kept: empty, and the migration's request.
        await conn.execute("TRUNCATE " + ", ".join(f"oversight.{t}" for t in rollups.TABLES))
        await conn.execute("INSERT INTO oversight.jobs (name, next_at)"
                           " VALUES ($1, '-infinity') ON CONFLICT DO NOTHING",
                           rollups.REBUILD_JOB)
        assert await rollups.rebuild_if_asked(conn, world.catalog) is True
        assert await rollup_state(conn) == expected
        assert expected["stats_totals"]
        assert await rollups.rebuild_if_asked(conn, world.catalog) is False


async def test_cli_stats_rebuild_recomputes_what_was_lost(
        pool: asyncpg.Pool, database_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``awasi stats rebuild``: rollup rows deleted by hand come back from the cases."""
    world, _clock, _scheduler = await new_world(pool, database_url, seed=5, complaints=3)
    await drain(world)
    async with pool.acquire() as conn:
        expected = await rollup_state(conn)
        await conn.execute("DELETE FROM oversight.stats_totals")
    monkeypatch.setenv("AWASI_DATABASE_URL", database_url)
    assert await asyncio.to_thread(awasi_main, ["stats", "rebuild"]) == 0
    assert "rebuilt" in capsys.readouterr().out
    async with pool.acquire() as conn:
        assert await rollup_state(conn) == expected
        assert expected["stats_totals"]


@pytest.mark.parametrize(("seconds", "expected"), [
    (0, 0), (359, 0), (360, 1), (3 * 3600, 30), (23 * 3600 + 3599, 239),
    (24 * 3600, 240), (24 * 3600 + 3599, 240), (25 * 3600, 250), (239 * 3600 + 3599, 2390),
    (240 * 3600, 2400), (249 * 3600 + 3599, 2400), (250 * 3600, 2500), (-1, -1),
])
def test_bucket_edges(seconds: int, expected: int) -> None:
    assert rollups.bucket(timedelta(seconds=seconds)) == expected


async def test_the_rebuild_buckets_durations_as_the_consumer_does(pool: asyncpg.Pool) -> None:
    seconds = [-3600, -1, 0, 359, 360, 86399, 86400, 89999, 90000, 863999, 864000, 899999,
               900000, 5_000_000, 123_456_789]
    sql = rollups._BUCKET_SQL.format(d="make_interval(secs => s)")  # noqa: SLF001
    got = await pool.fetch(f"SELECT s, {sql} AS b FROM unnest($1::float8[]) AS s",
                           [float(x) for x in seconds])
    assert [r["b"] for r in got] == [rollups.bucket(timedelta(seconds=x)) for x in seconds]


@pytest.mark.parametrize("histogram", [
    [(30, 1)], [(10 * h, 1) for h in range(1, 7)], [(10, 2), (50, 1)], [(10, 1), (40, 1)],
    [(0, 3), (7, 2), (2400, 5), (2500, 1)], [(-3, 1), (5, 4)],
])
async def test_the_medians_in_sql_equal_the_python_ones(
        pool: asyncpg.Pool, histogram: list[tuple[int, int]]) -> None:
    rows = await pool.fetch(rollups.MEDIANS_SQL.format(
        source="SELECT 'k'::text AS key, 'ack'::text AS measure, b AS bucket, n::bigint AS n"
               " FROM unnest($1::int[], $2::int[]) AS x(b, n)"),
        [b for b, _ in histogram], [n for _, n in histogram])
    assert [float(r["median"]) for r in rows] == [rollups.median(histogram)]


def test_median_is_percentile_cont_of_the_buckets() -> None:
    assert rollups.median([]) is None
    assert rollups.median([(30, 1)]) == 3.0
    # 1..6 hours: percentile_cont interpolates between the 3rd and 4th values.
    assert rollups.median([(10 * h, 1) for h in range(1, 7)]) == 3.5
    assert rollups.median([(10, 2), (20, 0), (50, 1)]) == 1.0
    assert rollups.median([(10, 1), (40, 1)]) == 2.5
    assert rollups.median([(10, -1), (40, 1)]) == 4.0  # non-positive counts ignored
