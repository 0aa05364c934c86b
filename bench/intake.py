"""Intake benchmark: durable accepts/s through ``POST /api/v1/complaints`` against two
raw asyncpg baselines at the same concurrency, on one embedded PostgreSQL and broker
started here:

- one complaint row plus one outbox row per transaction (the naive limit; the
  historical ratio is against this);
- the service's own group commit without the service (same batch size, workers and
  statements, ``RawGroupCommit``): the fair comparison, whose ratio is what the web
  layer (HTTP, JSON, validation, middlewares) costs.

The service runs as a real process (``awasi serve intake``); 201 is answered only
after the commit (group commit: concurrent submissions share a transaction). After
each round the tracking code of every 201 is looked up among the stored complaints
and the outbox's events: a 201 whose complaint or event is missing fails the run.

Run: ``.venv/bin/python bench/intake.py [--concurrency 64] [--duration 10] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402

from awasi.db import create_pool, migrate_schema  # noqa: E402
from awasi.db.pool import connect  # noqa: E402
from awasi.embedded import EmbeddedStack, free_port  # noqa: E402
from awasi.events import topics  # noqa: E402
from awasi.events.envelope import Envelope  # noqa: E402
from awasi.events.outbox import add_to_outbox  # noqa: E402
from awasi.events.payloads import ComplaintSubmitted  # noqa: E402
from bench.stats import pct  # noqa: E402
from services.intake.app import SCHEMA, migrations  # noqa: E402
from services.intake.db import INSERT_SUBMISSIONS  # noqa: E402
from tests.support.services import wait_ready  # noqa: E402

# The service's batcher (services/intake/batch.py): its defaults, as the app builds it.
MAX_BATCH = 128
BATCH_WORKERS = 3

BODY = {
    "region": "MDN", "category": "jalan-rusak", "title": "Jalan berlubang",
    "description": "Lubang besar di depan sekolah dasar, berbahaya bagi pengendara motor.",
    "location": {"lat": 3.59, "lon": 98.67, "address": "Jl. Gatot Subroto"},
    "reporter": {"name": "Budi", "phone": "+62 811 222 3333"}, "privacy": "confidential",
}


async def create_raw_tables(conn: asyncpg.Connection) -> None:
    """Copies of intake's complaint and outbox tables (indexes, constraints and the
    outbox's NOTIFY trigger included) for the raw side, so the running service's
    relay does not pick up, publish and mark the raw rows."""
    await conn.execute("""
        CREATE SCHEMA raw;
        CREATE TABLE raw.complaints (LIKE intake.complaints INCLUDING ALL);
        CREATE TABLE raw.reporters (LIKE intake.reporters INCLUDING ALL);
        CREATE TABLE raw.timeline (LIKE intake.timeline INCLUDING ALL);
        CREATE TABLE raw.outbox (LIKE intake.outbox INCLUDING ALL);
        CREATE TRIGGER outbox_notify AFTER INSERT OR UPDATE OF sent_at ON raw.outbox
            FOR EACH ROW WHEN (NEW.sent_at IS NULL) EXECUTE FUNCTION intake.outbox_notify();
    """)


# intake's own group-commit statement (services/intake/db.py), aimed at the raw copies.
RAW_SUBMISSIONS = INSERT_SUBMISSIONS.replace("intake.", "raw.")


class RawGroupCommit:
    """The service's group commit without the service: the same batch size, workers
    and statements (``INSERT_SUBMISSIONS`` and ``add_to_outbox``) through raw asyncpg,
    each caller answered after the COMMIT holding its rows. What it lacks is exactly
    the web layer: HTTP, JSON, validation, the app's middlewares."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.queue: asyncio.Queue[tuple[tuple[Any, ...], tuple[Any, ...], Envelope,
                                        asyncio.Future[None]]] = asyncio.Queue()

    async def submit(self, row: tuple[Any, ...], reporter: tuple[Any, ...],
                     env: Envelope) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.queue.put((row, reporter, env, fut))
        await fut

    async def worker(self) -> None:
        while True:
            items = [await self.queue.get()]
            while len(items) < MAX_BATCH and not self.queue.empty():
                items.append(self.queue.get_nowait())
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(RAW_SUBMISSIONS,
                                   *(list(col) for col in zip(*(i[0] for i in items),
                                                              strict=True)),
                                   *(list(col) for col in zip(*(i[1] for i in items),
                                                              strict=True)))
                await add_to_outbox(conn, "raw", topics.INTAKE, *(i[2] for i in items))
            for *_, fut in items:
                fut.set_result(None)


async def raw_group_commit(dsn: str, concurrency: int, duration: float,
                           pool_size: int) -> tuple[int, list[float]]:
    """``concurrency`` callers, each a complaint at a time, through ``RawGroupCommit``
    on a pool of the service's size."""
    pool = await create_pool(dsn, min_size=pool_size, max_size=pool_size)
    batcher = RawGroupCommit(pool)
    workers = [asyncio.ensure_future(batcher.worker()) for _ in range(BATCH_WORKERS)]
    latencies: list[float] = []
    done = 0
    stop = time.perf_counter() + duration
    secret_hash = hashlib.sha256(b"x").digest()

    async def caller(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            cid = uuid.uuid4()
            now = datetime.now(UTC)
            code = f"MDN-G{w:03d}-{i:08d}"
            env = Envelope.build(ComplaintSubmitted(
                tracking_code=code, region="MDN", category="jalan-rusak",
                title=BODY["title"], description=BODY["description"], privacy="confidential",
                reporter_ref=f"rr_{cid.hex}", channel="api", submitted_at=now,
            ), complaint_id=str(cid), producer="intake", occurred_at=now)
            row = (cid, code, "MDN", "jalan-rusak", BODY["title"], BODY["description"], 3.59,
                   98.67, "Jl. Gatot Subroto", "confidential", "api", f"rr_{cid.hex}",
                   secret_hash, "submitted", now, now, None)
            await batcher.submit(row, (cid, "Budi", "+62 811 222 3333", None), env)
            latencies.append(time.perf_counter() - t0)
            done += 1
            i += 1

    try:
        await asyncio.gather(*(caller(w) for w in range(concurrency)))
    finally:
        for t in workers:
            t.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await pool.close()
    return done, latencies


async def drained(conn: asyncpg.Connection) -> None:
    """Wait until the service's relay has published everything (so the raw side does
    not share the machine with a backlog)."""
    while await conn.fetchval("SELECT count(*) FROM intake.outbox WHERE sent_at IS NULL"):  # noqa: ASYNC110 - polls the database
        await asyncio.sleep(0.2)


async def raw_limit(dsn: str, concurrency: int, duration: float) -> tuple[int, list[float]]:
    """One complaint row + one outbox row per transaction, ``concurrency`` workers."""
    pool = await create_pool(dsn, min_size=concurrency, max_size=concurrency)
    latencies: list[float] = []
    done = 0
    stop = time.perf_counter() + duration
    secret_hash = hashlib.sha256(b"x").digest()

    async def worker(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            cid = uuid.uuid4()
            now = datetime.now(UTC)
            code = f"MDN-{w:04d}-{i:08d}"
            env = Envelope.build(ComplaintSubmitted(
                tracking_code=code, region="MDN", category="jalan-rusak",
                title=BODY["title"], description=BODY["description"], privacy="confidential",
                reporter_ref=f"rr_{cid.hex}", channel="api", submitted_at=now,
            ), complaint_id=str(cid), producer="intake")
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO raw.complaints (id, tracking_code, region, category, title,"
                    " description, lat, lon, address, privacy, channel, reporter_ref,"
                    " secret_hash, status, submitted_at, updated_at)"
                    " VALUES ($1,$2,'MDN','jalan-rusak',$3,$4,3.59,98.67,'Jl. Gatot Subroto',"
                    "'confidential','api',$5,$6,'submitted',$7,$7)",
                    cid, code, BODY["title"], BODY["description"], f"rr_{cid.hex}",
                    secret_hash, now)
                await conn.execute(
                    "INSERT INTO raw.outbox (event_id, topic, key, event_type, envelope)"
                    " VALUES ($1, $2, $3, $4, $5::jsonb)",
                    env.event_id, topics.INTAKE, str(cid), env.type, env.model_dump(mode="json"))
            latencies.append(time.perf_counter() - t0)
            done += 1
            i += 1

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    await pool.close()
    return done, latencies


async def service_run(url: str, concurrency: int, duration: float,
                      codes: list[str] | None = None) -> tuple[int, int, list[float]]:
    """POST for ``duration`` s from ``concurrency`` clients; (201s, others, latencies).
    The tracking code of every 201 goes into ``codes``."""
    latencies: list[float] = []
    ok = failed = 0
    stop = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            nonlocal ok, failed
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                async with session.post(f"{url}/api/v1/complaints", json=BODY) as r:
                    body = await r.json(content_type=None)
                    if r.status == 201:
                        ok += 1
                        latencies.append(time.perf_counter() - t0)
                        if codes is not None:
                            codes.append(body["tracking_code"])
                    else:
                        failed += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, failed, latencies


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="awb-", dir="/tmp"))
    stack = EmbeddedStack(root)  # stops PostgreSQL again if the broker fails to start
    stack.start()
    pg, broker = stack.postgres, stack.broker
    proc: subprocess.Popen[bytes] | None = None
    try:
        admin = await asyncpg.connect(pg.uri("postgres"))
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        dsn = pg.uri("bench")
        conn = await connect(dsn)
        await migrate_schema(conn, SCHEMA, migrations())
        await create_raw_tables(conn)

        # The service, as a real process, started once and warmed up.
        port = free_port()
        env = dict(os.environ)
        env.update({"AWASI_DATABASE_URL": dsn, "AWASI_KAFKA_BOOTSTRAP": broker.bootstrap,
                    "AWASI_INTAKE_PORT": str(port), "AWASI_RATE_LIMIT_PER_MINUTE": "100000000",
                    "AWASI_DB_POOL_MAX": str(args.pool), "AWASI_LOG_LEVEL": "WARNING",
                    # `awasi serve` refuses the built-in development key.
                    "AWASI_SECRET_KEY": secrets.token_hex(32)})
        proc = subprocess.Popen([sys.executable, "-m", "awasi", "serve", "intake"], env=env,  # noqa: S603, ASYNC220
                                stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, proc, 60, name="intake")
        await service_run(url, args.concurrency, 2.0)  # warm-up

        # Rounds alternate the raw limit and the service, so a slow spell of this
        # shared machine weighs on both sides; the ratio is of the medians.
        print(f"concurrency {args.concurrency}, {args.rounds} rounds of {args.duration:.0f} s"
              f" each side, service pool {args.pool}, raw pool {args.concurrency}")
        raw_rates: list[float] = []
        group_rates: list[float] = []
        svc_rates: list[float] = []
        raw_lat: list[float] = []
        group_lat: list[float] = []
        svc_lat: list[float] = []
        not_durable: list[str] = []
        for r in range(1, args.rounds + 1):
            await drained(conn)
            await conn.execute("TRUNCATE raw.outbox, raw.complaints, raw.reporters,"
                               " raw.timeline")
            raw_n, lat = await raw_limit(dsn, args.concurrency, args.duration)
            raw_rates.append(raw_n / args.duration)
            raw_lat += lat
            await conn.execute("TRUNCATE raw.outbox, raw.complaints, raw.reporters,"
                               " raw.timeline")
            group_n, lat = await raw_group_commit(dsn, args.concurrency, args.duration,
                                                  args.pool)
            group_rates.append(group_n / args.duration)
            group_lat += lat
            await conn.execute("TRUNCATE intake.outbox, intake.complaints CASCADE")
            codes: list[str] = []
            ok, failed, lat = await service_run(url, args.concurrency, args.duration, codes)
            svc_rates.append(ok / args.duration)
            svc_lat += lat
            # Durable means: the very complaint each 201 named is stored, and so is its
            # event (counts could hide a lost row behind an extra one).
            stored = {r["tracking_code"] for r in await conn.fetch(
                "SELECT tracking_code FROM intake.complaints")}
            events = {r["code"] for r in await conn.fetch(
                "SELECT envelope->'payload'->>'tracking_code' AS code FROM intake.outbox"
                " WHERE event_type = 'complaint.submitted'")}
            lost = [c for c in codes if c not in stored or c not in events]
            not_durable += lost
            print(f"round {r}: raw {raw_rates[-1]:6.0f} tx/s, raw group commit "
                  f"{group_rates[-1]:6.0f}/s, service {svc_rates[-1]:6.0f} req/s; non-201 "
                  f"{failed}; 201s {ok}, each stored with its event: {ok - len(lost)}")
        await conn.close()

        raw_rate = statistics.median(raw_rates)
        group_rate = statistics.median(group_rates)
        svc_rate = statistics.median(svc_rates)
        print(f"raw asyncpg, one tx per complaint:          {raw_rate:8.0f} tx/s   "
              f"p50 {pct(raw_lat, 50) * 1000:6.1f} ms  p99 {pct(raw_lat, 99) * 1000:6.1f} ms")
        print(f"raw asyncpg, the service's group commit:    {group_rate:8.0f} /s     "
              f"p50 {pct(group_lat, 50) * 1000:6.1f} ms  p99 {pct(group_lat, 99) * 1000:6.1f} ms")
        print(f"POST /api/v1/complaints (201, durable):     {svc_rate:8.0f} req/s  "
              f"p50 {pct(svc_lat, 50) * 1000:6.1f} ms  p99 {pct(svc_lat, 99) * 1000:6.1f} ms")
        print(f"ratio service / one tx per complaint (medians): {svc_rate / raw_rate:.2f}")
        print(f"ratio service / the same group commit (medians): {svc_rate / group_rate:.2f}"
              "  (what the web layer costs)")
        if not_durable:
            print(f"ERROR: {len(not_durable)} 201s not durable, e.g. {not_durable[:5]}")
            sys.exit(1)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=10, help="the service's AWASI_DB_POOL_MAX")
    asyncio.run(main(parser.parse_args()))
