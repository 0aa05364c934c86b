"""End-to-end latency: from a citizen's submission to the ticket being visible in the
right agency's queue through the router's API.

Starts one embedded PostgreSQL and broker, then ``awasi serve intake`` and ``awasi
serve router`` as real processes (demo catalog). Submits complaints at a fixed rate
through intake's ``POST /api/v1/complaints`` (or, with ``--direct``, publishes
``complaint.submitted`` envelopes straight to ``awasi.intake.v1``); one reader per
target agency reads ``GET /api/v1/tickets`` with that agency's staff token and
records when each tracking code first shows, and that it shows at the right agency.
By default a reader long-polls (If-None-Match and ``wait``: the router answers when
the agency's queue changes), as the desk does; ``--poll-ms N`` reads every N ms
instead.

Latency = first seen in the queue - moment the submission was sent; percentiles say
over how many complaints. A complaint refused, never seen, or seen at another agency
than its rule names is a failure: each is printed and the script exits 1.

With ``--tracing`` the services export their spans by OTLP/HTTP (the standard
``OTEL_EXPORTER_OTLP_ENDPOINT``) to a collector this script runs on 127.0.0.1 in a
process of its own (tests/support/otlp.py), which decodes and counts them; without
it every ``OTEL_*`` variable is removed and ``OTEL_TRACES_EXPORTER=none`` set, so
tracing is off. Run both to measure what tracing costs (docs/BENCHMARKS.md).

With ``--routers N`` it starts N router processes: one consumer group (they share
the topic's partitions) and the agencies' readers spread over their APIs. The load
average before and after the run is printed with the figures (a shared machine's
figures mean little without it).

Run: ``.venv/bin/python bench/e2e.py [--rate 200] [--duration 60] [--direct]
[--routers 1] [--tracing [--db-spans]]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402

from awasi.catalog import load_catalog  # noqa: E402
from awasi.db import create_pool  # noqa: E402
from awasi.embedded import free_port  # noqa: E402
from awasi.events import topics  # noqa: E402
from awasi.events.envelope import Envelope  # noqa: E402
from awasi.events.payloads import ComplaintSubmitted  # noqa: E402
from awasi.identity import add_user  # noqa: E402
from awasi.settings import DEMO_CATALOG  # noqa: E402
from bench.support import (  # noqa: E402
    cpu_seconds,
    create_database,
    pct,
    service_env,
    start_stack,
    stop_processes,
)
from tests.support.services import wait_ready  # noqa: E402

PASSWORD = "bench-password-1"
# (region, category, description): category rules and a keyword rule, four agencies.
MIX = [
    ("MDN", "jalan-rusak", "Lubang besar di Jl. Gatot Subroto, berbahaya bagi motor."),
    ("MDN", "asn-pungli", "Petugas meminta uang tambahan untuk tanda tangan surat."),
    ("MDN", "lainnya", "Tumpukan sampah di pasar sudah tiga hari tidak diangkut."),
    ("SRG", "jalan-rusak", "Jalan menuju pelabuhan rusak parah setelah hujan."),
]


class Run:
    def __init__(self) -> None:
        self.sent: dict[str, tuple[float, str]] = {}  # tracking code -> (t sent, agency)
        self.seen: dict[str, tuple[float, str]] = {}  # tracking code -> (t seen, agency)
        self.failed = 0
        self.stop = False
        self.post_latencies: list[float] = []  # intake's answer to the POST
        self.wall: dict[str, float] = {}  # tracking code -> time.time() when sent
        self.answered: dict[str, float] = {}  # tracking code -> time.time() of the 201


async def poller(session: aiohttp.ClientSession, router: str, token: str, run: Run,
                 poll_s: float, limit: int) -> None:
    """Read one agency's queue: as a long-poll (``poll_s`` 0: If-None-Match and wait,
    answered when the queue changes), or every ``poll_s`` seconds."""
    auth = {"Authorization": f"Bearer {token}"}
    # The newest few are enough: a read comes round long before more arrive.
    params = {"sort": "-created", "limit": str(limit)}
    if not poll_s:
        params["wait"] = "1"
    tag: str | None = None
    last_deep = time.perf_counter()
    while not run.stop:
        headers = auth | ({"If-None-Match": tag} if tag and not poll_s else {})
        async with session.get(f"{router}/api/v1/tickets", headers=headers,
                               params=params) as r:
            if r.status == 304:
                continue
            tag = r.headers.get("ETag")
            tickets = (await r.json())["tickets"]
        now = time.perf_counter()
        # Read further back when a whole page is new (the consumer commits up to 100
        # events at once), and once a second anyway: created_at is when the routing
        # transaction began, and transactions of different partitions commit out of
        # that order, so a ticket can appear below ones seen already. Such a ticket
        # counts as seen when the deep read finds it (its latency errs long, not short).
        if (len(tickets) == limit and all(t["tracking_code"] not in run.seen for t in tickets)
                or now - last_deep > 1.0):
            async with session.get(f"{router}/api/v1/tickets", headers=auth,
                                   params={"sort": "-created", "limit": "500"}) as r:
                tickets = (await r.json())["tickets"]
            now = last_deep = time.perf_counter()
        for t in tickets:
            run.seen.setdefault(t["tracking_code"], (now, t["agency"]))
        if poll_s:
            await asyncio.sleep(poll_s)


async def submit_http(session: aiohttp.ClientSession, intake: str, i: int, run: Run,
                      expected: dict[int, str]) -> None:
    region, category, text = MIX[i % len(MIX)]
    t0 = time.perf_counter()
    wall = time.time()
    async with session.post(f"{intake}/api/v1/complaints", json={
        "region": region, "category": category, "description": text,
        "privacy": "confidential", "reporter": {"name": "Warga Bench"},
    }) as r:
        if r.status != 201:
            run.failed += 1
            return
        code = (await r.json())["tracking_code"]
    run.post_latencies.append(time.perf_counter() - t0)
    run.sent[code] = (t0, expected[i % len(MIX)])
    run.wall[code] = wall
    run.answered[code] = wall + run.post_latencies[-1]


async def submit_direct(producer: AIOKafkaProducer, i: int, run: Run,
                        expected: dict[int, str]) -> None:
    region, category, text = MIX[i % len(MIX)]
    cid = str(uuid.uuid4())
    code = f"BENCH-{i:07d}"
    env = Envelope.build(ComplaintSubmitted(
        tracking_code=code, region=region, category=category, description=text,
        privacy="confidential", reporter_ref=f"rr_{cid}", submitted_at=datetime.now(UTC),
    ), complaint_id=cid, producer="intake")
    t0 = time.perf_counter()
    run.sent[code] = (t0, expected[i % len(MIX)])
    await producer.send_and_wait(topics.INTAKE, env.to_bytes(), key=cid.encode())


async def drive(args: argparse.Namespace, intake: str, router: str, bootstrap: str,
                tokens: dict[str, str], expected: dict[int, str], n: int,
                rate: float) -> Run:
    run = Run()
    counter = itertools.count(args.offset)
    producer: AIOKafkaProducer | None = None
    if args.direct:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=False, linger_ms=1)
        await producer.start()
    connector = aiohttp.TCPConnector(limit=256)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            # With several router processes the agencies' readers are spread over
            # them (the API's reads are most of a router's work at high rates).
            readers = args.router_urls or [router]
            pollers = [asyncio.ensure_future(poller(session, readers[k % len(readers)], tok,
                                                    run, args.poll_ms / 1000, args.page))
                       for k, tok in enumerate(tokens.values())]
            tasks = []
            start = time.perf_counter()
            for k in range(n):
                due = start + k / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                i = next(counter)
                coro = (submit_direct(producer, i, run, expected) if producer is not None
                        else submit_http(session, intake, i, run, expected))
                tasks.append(asyncio.ensure_future(coro))
            await asyncio.gather(*tasks)
            sent_for = time.perf_counter() - start
            deadline = time.perf_counter() + 30
            while time.perf_counter() < deadline and any(  # noqa: ASYNC110 - polling a dict
                    c not in run.seen for c in run.sent):
                await asyncio.sleep(0.05)
            run.stop = True
            await asyncio.gather(*pollers)
            run.sent_for = sent_for  # type: ignore[attr-defined]
    finally:
        if producer is not None:
            await producer.stop()
    args.offset = next(counter)
    return run


def check(run: Run, label: str) -> list[str]:
    """Every way a complaint of ``run`` failed, one line each: refused by intake, never
    seen in any agency's queue, or seen at another agency than its rule names."""
    out = [f"{label}: {run.failed} submissions not answered 201"] if run.failed else []
    for code, (_, agency) in run.sent.items():
        if code not in run.seen:
            out.append(f"{label}: {code} (for {agency}) never seen in a queue")
        elif run.seen[code][1] != agency:
            out.append(f"{label}: {code} seen at {run.seen[code][1]}, its rule names {agency}")
    return out


async def print_stages(dsn: str, run: Run) -> None:
    """Where the time goes, from the timestamps the services keep: intake's outbox row
    (created at the start of the group commit, sent when the broker acknowledged) and
    the router's ticket (created at the start of the routing transaction)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.tracking_code, extract(epoch FROM o.created_at) AS stored,"
            " extract(epoch FROM o.sent_at) AS published,"
            " extract(epoch FROM t.created_at) AS routed"
            " FROM intake.complaints c"
            " JOIN intake.outbox o ON o.key = c.id::text AND o.event_type = 'complaint.submitted'"
            " JOIN router.tickets t ON t.complaint_id = c.id::text")
    finally:
        await conn.close()
    stages: dict[str, list[float]] = {
        "sent -> intake's transaction": [], "-> published (relay, broker ack)": [],
        "-> router's transaction (fetch)": [], "-> seen in the queue (commit, read)": []}
    for r in rows:
        code = r["tracking_code"]
        if code not in run.wall or code not in run.seen:
            continue
        sent = run.wall[code]
        seen = sent + run.seen[code][0] - run.sent[code][0]
        points = [sent, float(r["stored"]), float(r["published"]), float(r["routed"]), seen]
        for values, a, b in zip(stages.values(), points, points[1:], strict=False):
            values.append(b - a)
    # The relay's stage starts when intake's transaction begins, so it holds that
    # transaction too: split it at the 201 (after the commit) to see the relay's own share.
    split: dict[str, list[float]] = {"  of which tx start -> 201 (commit)": [],
                                     "  of which 201 -> published": []}
    for r in rows:
        code = r["tracking_code"]
        if code in run.answered and code in run.seen:
            split["  of which tx start -> 201 (commit)"].append(
                run.answered[code] - float(r["stored"]))
            split["  of which 201 -> published"].append(
                float(r["published"]) - run.answered[code])
    for name, values in stages.items():
        print(f"  {name:<38} p50 {pct(values, 50) * 1000:6.1f} ms"
              f"  p99 {pct(values, 99) * 1000:6.1f} ms  (n={len(values)})")
        if name.startswith("-> published"):
            for sub, vs in split.items():
                if vs:
                    print(f"  {sub:<38} p50 {pct(vs, 50) * 1000:6.1f} ms"
                          f"  p99 {pct(vs, 99) * 1000:6.1f} ms  (n={len(vs)})")


async def main(args: argparse.Namespace) -> int:
    root, stack = start_stack("awe-")
    pg, broker = stack.postgres, stack.broker
    procs: list[subprocess.Popen[bytes]] = []
    spans: subprocess.Popen[str] | None = None
    try:
        dsn = await create_database(pg, "bench")
        catalog = load_catalog(DEMO_CATALOG)
        expected = {i: catalog.route(r, c, t).agency or "triage"
                    for i, (r, c, t) in enumerate(MIX)}
        pool = await create_pool(dsn, min_size=1, max_size=2)
        for agency in set(expected.values()):
            await add_user(pool, username=f"bench.{agency.lower()}", password=PASSWORD,
                           role="staff", agency=agency)
        await pool.close()

        ports = {"intake": free_port(), "router": free_port()}
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        if args.tracing:
            # The collector in a process of its own: decoding spans must not slow this
            # process, which measures.
            port = free_port()
            spans = subprocess.Popen(  # noqa: S603, ASYNC220 - start-up only
                [sys.executable, "-m", "tests.support.otlp", str(port)],
                stdout=subprocess.PIPE, text=True,
                cwd=ROOT)
            assert spans.stdout is not None and spans.stdout.readline().strip() == "ready"
            # A short batch delay: spans arrive while the run goes on, as in production.
            base_env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                             "OTEL_BSP_SCHEDULE_DELAY": "500"})
            if args.db_spans:
                base_env["AWASI_TRACE_QUERIES"] = "true"
        else:
            base_env["OTEL_TRACES_EXPORTER"] = "none"
        base_env = service_env(dsn, broker.bootstrap, ports, base_env,
                               fetch_wait_ms=args.fetch_wait_ms)
        services = ["router"] if args.direct else ["intake", "router"]
        # More router processes (--routers): one consumer group, so they share the
        # topic's partitions; the readers read the first one's API.
        services += [f"router{k}" for k in range(2, args.routers + 1)]
        urls = {}
        for name in services:
            port = ports.get(name) or free_port()
            env = base_env | {f"AWASI_{name.rstrip('0123456789').upper()}_PORT": str(port)}
            urls[name] = f"http://127.0.0.1:{port}"
            log = (root / f"{name}.log").open("wb")
            procs.append(subprocess.Popen(  # noqa: S603, ASYNC220 - start-up only
                [sys.executable, "-m", "awasi", "serve", name.rstrip("0123456789")],
                env=env, stdout=subprocess.DEVNULL, stderr=log))
        intake = f"http://127.0.0.1:{ports['intake']}"
        router = urls["router"]
        args.router_urls = [u for n, u in urls.items() if n.startswith("router")]
        for name, proc in zip(services, procs, strict=True):
            await wait_ready(urls[name], proc, 90)
        print("processes: " + ", ".join(f"{n} pid {p.pid}" for n, p in
                                        zip(services, procs, strict=True)), flush=True)
        tokens: dict[str, str] = {}
        async with aiohttp.ClientSession() as session:
            for agency in set(expected.values()):
                async with session.post(f"{router}/api/v1/auth/login", json={
                    "username": f"bench.{agency.lower()}", "password": PASSWORD}) as r:
                    tokens[agency] = (await r.json())["token"]

        args.offset = 0
        warm = await drive(args, intake, router, broker.bootstrap, tokens, expected, 40, 20)
        cpu_before = {name: cpu_seconds(p.pid) for name, p in zip(services, procs, strict=True)}
        load_before = os.getloadavg()
        run = await drive(args, intake, router, broker.bootstrap, tokens, expected,
                          int(args.rate * args.duration), args.rate)
        load_after = os.getloadavg()

        cpu = {name: cpu_seconds(p.pid) - cpu_before[name]
               for name, p in zip(services, procs, strict=True)}
        failures = check(warm, "warm-up") + check(run, "run")
        wrong = [c for c, (_, agency) in run.sent.items()
                 if c in run.seen and run.seen[c][1] != agency]
        missing = [c for c in run.sent if c not in run.seen]
        # Latency only of complaints seen at the right agency.
        latencies = [run.seen[c][0] - t0 for c, (t0, _) in run.sent.items()
                     if c in run.seen and c not in wrong]
        how = ("published complaint.submitted straight to awasi.intake.v1 (--direct)"
               if args.direct else "submitted through intake's POST /api/v1/complaints")
        print(f"e2e: {how}; {args.routers} router process(es); service logs in {root}")
        tracing_how = ("off" if not args.tracing else "on, OTLP/HTTP to a collector on 127.0.0.1"
                       + (", a span per query (AWASI_TRACE_QUERIES)" if args.db_spans
                          else ""))
        print(f"tracing: {tracing_how}")
        # The machine may be shared: the figures mean little without its load.
        print("load average (1, 5, 15 min) before the run "
              f"{', '.join(f'{x:.2f}' for x in load_before)}, after "
              f"{', '.join(f'{x:.2f}' for x in load_after)} ({os.cpu_count()} cores)")
        print(f"target {args.rate:.0f}/s for {args.duration:.0f} s; sent {len(run.sent)} in "
              f"{run.sent_for:.1f} s ({len(run.sent) / run.sent_for:.0f}/s); "  # type: ignore[attr-defined]
              f"non-201 {run.failed}; each of 4 agencies' queues read "
              f"{f'every {args.poll_ms} ms' if args.poll_ms else 'by long-poll'}, "
              f"{args.page} newest")
        print(f"visible in the right agency's queue: {len(latencies)}; wrong agency "
              f"{len(wrong)}; never seen {len(missing)}")
        print(f"latency over {len(latencies)} complaints: "
              f"p50 {pct(latencies, 50) * 1000:.1f} ms  p90 {pct(latencies, 90) * 1000:.1f}"
              f" ms  p99 {pct(latencies, 99) * 1000:.1f} ms  max "
              f"{max(latencies, default=float('nan')) * 1000:.1f} ms "
              f"(targets: p50 <= 50 ms, p99 <= 250 ms)")
        if run.post_latencies:
            post = run.post_latencies
            print(f"of which intake's POST answered (201, committed), over {len(post)}: p50 "
                  f"{pct(post, 50) * 1000:.1f} ms  p99 {pct(post, 99) * 1000:.1f} ms")
            await print_stages(dsn, run)
        # CPU the services spent on the run (user + system), per complaint: what tracing
        # adds, less blurred by other load on the machine than the latencies.
        print("service CPU per complaint: " + ", ".join(
            f"{name} {seconds / max(1, len(run.sent)) * 1000:.2f} ms"
            for name, seconds in cpu.items()))
        if spans is not None:
            await asyncio.sleep(1.5)  # the last batch
            spans.terminate()
            got = json.loads(spans.communicate(timeout=30)[0].strip().splitlines()[-1])
            print(f"spans exported: {got['spans']} in {got['requests']} OTLP requests, "
                  f"{got['traces']} traces")
        for line in failures[:20]:
            print(f"FAILURE: {line}")
        if failures:
            print(f"{len(failures)} failures (a complaint refused, never seen, or seen at "
                  "the wrong agency)")
            return 1
        return 0
    finally:
        stop_processes(procs)
        if spans is not None and spans.poll() is None:
            spans.kill()
        stack.stop()
        shutil.rmtree(root / "pg", ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="complaints per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of submitting")
    parser.add_argument("--poll-ms", type=int, default=0,
                        help="pause between queue reads (0: long-poll the queue)")
    parser.add_argument("--page", type=int, default=20,
                        help="tickets per queue read (newest first)")
    parser.add_argument("--fetch-wait-ms", type=int, default=20,
                        help="the services' AWASI_KAFKA_FETCH_MAX_WAIT_MS")
    parser.add_argument("--routers", type=int, default=1,
                        help="router processes (one consumer group; the agencies' "
                        "queue readers are spread over them)")
    parser.add_argument("--direct", action="store_true",
                        help="publish complaint.submitted to the topic instead of using intake")
    parser.add_argument("--tracing", action="store_true",
                        help="services export spans by OTLP to a local collector (else off)")
    parser.add_argument("--db-spans", action="store_true",
                        help="with --tracing: a span per database query too "
                             "(AWASI_TRACE_QUERIES=true)")
    sys.exit(asyncio.run(main(parser.parse_args())))
