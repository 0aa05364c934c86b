"""The event backbone under failure, with real processes, PostgreSQL and broker.

A state change and its event, written in one transaction, are applied exactly once
downstream when the relay dies after publishing but before marking sent, when the
consumer dies after its database commit but before committing the offset, and when
the broker is stopped for a while. Consumer groups split partitions and survive a
rebalance; invalid events go to the dead-letter topic without blocking.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from awasi.db import create_pool
from awasi.embedded import EmbeddedBroker, _die_with_parent
from awasi.events.envelope import Envelope
from awasi.events.payloads import ProbePing
from awasi.settings import Settings
from tests.support import probe
from tests.support.kafka import committed_offsets, publish, read_all, read_topic
from tests.support.stack import process_env
from tests.support.wait import eventually

pytestmark = pytest.mark.slow


class Proc:
    """``python -m tests.support.probe ROLE NAME`` as a real process."""

    def __init__(self, role: str, name: str, settings: Settings, faults: str = "") -> None:
        env = process_env(settings.require_database(), settings.require_kafka())
        env["AWASI_TOPIC_PARTITIONS"] = str(settings.topic_partitions)
        if faults:
            env["AWASI_FAULTS"] = faults
        self.name = name
        self.p = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "tests.support.probe", role, name], env=env,
            stderr=None if os.environ.get("AWASI_TEST_LOGS") else subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no orphans if pytest dies
        )

    def alive(self) -> bool:
        return self.p.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    try:
        yield started
    finally:
        for p in started:
            p.kill()


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    await probe.migrate(settings.require_database())
    p = await create_pool(settings.require_database(), min_size=1, max_size=5)
    try:
        yield p
    finally:
        await p.close()


async def effects(pool: asyncpg.Pool) -> dict[int, tuple[int, str]]:
    rows = await pool.fetch("SELECT seq, times, applied_by FROM probe.effects")
    return {r["seq"]: (r["times"], r["applied_by"]) for r in rows}


async def unsent(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM probe.outbox WHERE sent_at IS NULL"))


def assert_exactly_once(got: dict[int, tuple[int, str]], expected: range) -> None:
    assert sorted(got) == list(expected), "lost or unexpected effects"
    twice = {seq: t for seq, (t, _) in got.items() if t != 1}
    assert not twice, f"effects applied more than once: {twice}"


async def test_relay_killed_after_publish_before_marking_sent(
    settings: Settings, pool: asyncpg.Pool, broker: EmbeddedBroker, procs: list[Proc]
) -> None:
    await write_events(pool, range(50))
    relay = Proc("relay", "r1", settings, faults="relay.after_publish")
    procs.append(relay)
    # The relay publishes the batch, then SIGKILLs itself before marking it sent.
    assert relay.p.wait(30) == -signal.SIGKILL
    assert await unsent(pool) == 50, "the killed relay must not have marked anything sent"
    on_topic = await read_all(broker.bootstrap, probe.TOPIC, settle=0.5)
    assert len(on_topic) == 50, "the first relay did publish before dying"

    procs.append(Proc("relay", "r2", settings))
    procs.append(Proc("consume", "c1", settings))
    await eventually(lambda: _all_applied(pool, 50))
    await eventually(lambda: _zero_unsent(pool))
    on_topic = await read_all(broker.bootstrap, probe.TOPIC, settle=0.5)
    assert len(on_topic) == 100, "every event was published twice (duplicate publish)"
    assert_exactly_once(await effects(pool), range(50))


async def test_consumer_killed_after_db_commit_before_offset_commit(
    settings: Settings, pool: asyncpg.Pool, broker: EmbeddedBroker, procs: list[Proc]
) -> None:
    await write_events(pool, range(60))
    procs.append(Proc("relay", "r1", settings))
    await eventually(lambda: _zero_unsent(pool))
    consumer = Proc("consume", "c1", settings, faults="consumer.after_db_commit:1")
    procs.append(consumer)
    assert consumer.p.wait(60) == -signal.SIGKILL
    applied_before = len(await effects(pool))
    assert applied_before >= 1
    # Read for real (an error here fails the test, never counts as "nothing committed").
    committed = sum((await committed_offsets(broker.bootstrap, probe.GROUP, probe.TOPIC,
                                             settings.topic_partitions)).values())
    assert committed < applied_before, (
        "the kill must land between the database commit and the offset commit"
    )
    procs.append(Proc("consume", "c2", settings))
    await eventually(lambda: _all_applied(pool, 60))
    # Wait until the group has committed the end of every partition: the consumer
    # commits only after its database commit, so by then every redelivery it will
    # ever read has been applied or skipped, and a late duplicate would show below.
    # (The end of each partition read from its records: Tansu's ListOffsets answers a
    # partition written in one batch with 1.)
    ends = dict.fromkeys(range(settings.topic_partitions), 0)
    for m in await read_all(broker.bootstrap, probe.TOPIC, settle=0.5):
        ends[m["_partition"]] = max(ends.get(m["_partition"], 0), m["_offset"] + 1)
    assert sum(ends.values()) == 60

    async def all_committed() -> bool:
        return await committed_offsets(broker.bootstrap, probe.GROUP, probe.TOPIC,
                                       settings.topic_partitions) == ends

    await eventually(all_committed, within=60, what="the group committing every offset")
    assert_exactly_once(await effects(pool), range(60))


async def test_broker_outage_writes_continue_and_relay_catches_up(
    settings: Settings, pool: asyncpg.Pool, broker: EmbeddedBroker, procs: list[Proc]
) -> None:
    procs.append(Proc("relay", "r1", settings))
    procs.append(Proc("consume", "c1", settings))
    await write_events(pool, range(0, 20))
    await eventually(lambda: _all_applied(pool, 20))

    broker.kill()
    # State changes keep succeeding: they touch only the database. (Hang guard only;
    # how fast writes are during an outage is bench/backbone.py's business.)
    async with asyncio.timeout(60):
        await write_events(pool, range(20, 60))
    await asyncio.sleep(2.0)  # give the relay time to (fail to) publish
    assert await unsent(pool) == 40, "nothing can be published while the broker is down"

    restarted = EmbeddedBroker(port=broker.port)
    restarted.start()
    try:
        await eventually(lambda: _zero_unsent(pool), within=60)
        await eventually(lambda: _all_applied(pool, 60), within=60)
        assert_exactly_once(await effects(pool), range(60))
    finally:
        restarted.stop()


async def test_two_consumers_split_partitions_and_survive_rebalance(
    settings: Settings, pool: asyncpg.Pool, broker: EmbeddedBroker, procs: list[Proc]
) -> None:
    await probe.ensure_probe_topic(settings)
    procs.append(Proc("relay", "r1", settings))
    first = Proc("consume", "c1", settings)
    procs.append(first)
    writer = asyncio.ensure_future(_write_slowly(pool, range(0, 600), per_batch=20))
    await eventually(lambda: _count_at_least(pool, 60))
    second = Proc("consume", "c2", settings)  # joins mid-stream: a rebalance
    procs.append(second)
    await eventually(lambda: _applied_by_both(pool), within=45)
    # Let both work side by side for a while before the second rebalance.
    seen = int(await pool.fetchval("SELECT count(*) FROM probe.effects"))
    await eventually(lambda: _count_at_least(pool, min(seen + 60, 600)), within=45)
    while_both = await effects(pool)
    first.stop()  # leaves mid-stream: another rebalance
    await writer
    await eventually(lambda: _all_applied(pool, 600), within=60)
    got = await effects(pool)
    assert_exactly_once(got, range(600))

    # Split, not shared: each partition's events were applied by one member at a time.
    # In offset order a partition may pass from one member to the other at a rebalance,
    # not go back and forth ...
    partition_of = {m["payload"]["seq"]: m["_partition"]
                    for m in await read_all(broker.bootstrap, probe.TOPIC, settle=0.5)}
    assert sorted(partition_of) == list(range(600))
    for p in set(partition_of.values()):
        owners = [got[seq][1] for seq in sorted(s for s in got if partition_of[s] == p)]
        switches = [(a, b) for a, b in zip(owners, owners[1:], strict=False) if a != b]
        # (at most one move per rebalance: two members reading one partition at once
        # would interleave their names many times over its ~200 events)
        assert len(switches) <= 2, f"partition {p} shared: {switches}"
    # ... and while both were members, each owned some partition (the latest effect of
    # each partition then names its owner).
    latest_owner = {}
    for seq in sorted(while_both):
        latest_owner[partition_of[seq]] = while_both[seq][1]
    assert set(latest_owner.values()) == {"c1", "c2"}, latest_owner


async def test_invalid_event_goes_to_dead_letter_without_blocking(
    settings: Settings, pool: asyncpg.Pool, broker: EmbeddedBroker, procs: list[Proc]
) -> None:
    await probe.ensure_probe_topic(settings)
    key = b"probe-1"
    bad_payload = Envelope.build(ProbePing(seq=1), complaint_id="probe-1", producer="probe")
    raw = json.loads(bad_payload.to_bytes())
    raw["payload"]["seq"] = "not a number"
    await publish(broker.bootstrap, probe.TOPIC, b"{not json", key=key)
    await publish(broker.bootstrap, probe.TOPIC, json.dumps(raw).encode(), key=key)
    good = Envelope.build(ProbePing(seq=7), complaint_id="probe-1", producer="probe")
    await publish(broker.bootstrap, probe.TOPIC, good.to_bytes(), key=key)  # same partition

    procs.append(Proc("consume", "c1", settings))
    await eventually(lambda: _all_applied(pool, 1, seqs=[7]))
    dead = await read_topic(broker.bootstrap, "awasi.deadletter.v1",
                            until=lambda m: len(m) >= 2)
    assert len(dead) == 2
    assert dead[0]["source"]["topic"] == probe.TOPIC
    assert "envelope" in dead[0]["reason"]
    assert "payload of probe.ping v1" in dead[1]["reason"] and "seq" in dead[1]["reason"]
    assert dead[1]["value"] == json.dumps(raw)
    assert dead[1]["_headers"]["reason"] == dead[1]["reason"]


# --- helpers ----------------------------------------------------------------------------

async def write_events(pool: asyncpg.Pool, seqs: range) -> None:
    await probe.write_events(pool, seqs)


async def _write_slowly(pool: asyncpg.Pool, seqs: range, per_batch: int) -> None:
    items = list(seqs)
    for i in range(0, len(items), per_batch):
        await probe.write_events(pool, items[i:i + per_batch])
        await asyncio.sleep(0.05)


async def _count_at_least(pool: asyncpg.Pool, n: int) -> bool:
    return int(await pool.fetchval("SELECT count(*) FROM probe.effects")) >= n


async def _all_applied(pool: asyncpg.Pool, n: int, seqs: list[int] | None = None) -> bool:
    if seqs is not None:
        got = await pool.fetchval("SELECT count(*) FROM probe.effects WHERE seq = ANY($1)", seqs)
        return int(got) == len(seqs)
    return int(await pool.fetchval("SELECT count(*) FROM probe.effects")) >= n


async def _zero_unsent(pool: asyncpg.Pool) -> bool:
    return await unsent(pool) == 0


async def _applied_by_both(pool: asyncpg.Pool) -> bool:
    rows = await pool.fetch("SELECT DISTINCT applied_by FROM probe.effects")
    return {r["applied_by"] for r in rows} == {"c1", "c2"}
