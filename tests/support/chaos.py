"""Chaos harness: complaints through intake (the JSON API and, with ``bot_complaints``,
the Telegram bot's webhook against a local Bot API stand-in) while intake, router and oversight are
SIGKILLed and restarted at random moments and the broker is stopped and restarted;
then every store is checked. Used by ``tests/test_chaos.py`` (a CI-sized run) and
``bench/chaos.py`` (a longer one).

Broker outages are the broker process stopped (SIGSTOP) for seconds and continued:
to every client it is gone, as an unreachable Apache Kafka would be, and, like Kafka,
it still has its data when it comes back. (Killing the embedded Tansu broker loses
all topics and committed offsets; that case is the stack restart that
``awasi dev`` handles by replaying the outbox, tested in test_backbone.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

from awasi.catalog import load_catalog
from awasi.cli import SERVICES
from awasi.db import create_pool
from awasi.embedded import EmbeddedBroker
from awasi.events import topics
from awasi.settings import Settings
from tests.support.kafka import read_all
from tests.support.services import ServiceProcess

SAMPLES = [
    ("MDN", "asn-pungli", "Petugas meminta uang tambahan untuk pengurusan surat di kelurahan."),
    ("MDN", "jalan-rusak", "Jalan berlubang besar di depan sekolah dasar, lama tak diperbaiki."),
    ("SRG", "asn-absen", "Pegawai tidak hadir pada jam pelayanan, antrean panjang sejak pagi."),
    ("PKY", "sampah", "Sampah menumpuk di TPS dan tidak diangkut selama seminggu."),
    ("SWL", "lainnya", "Lampu lalu lintas di persimpangan pasar mati sejak tiga hari."),
    ("PLJ", "asn-kasar", "Petugas loket berkata kasar kepada warga lanjut usia yang bertanya."),
]


CLIENT_PATIENCE_S = 120.0


@dataclass
class Outcome:
    key: str
    tracking_code: str | None = None
    complaint_id: str | None = None
    error: str | None = None
    attempts: int = 0


@dataclass
class ChaosReport:
    submitted: int = 0
    accepted: int = 0
    bot_accepted: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # why, for the first few
    retried: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    broker_restarts: int = 0
    seconds: float = 0.0
    checks: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            f"complaints submitted {self.submitted}, accepted {self.accepted} "
            f"(of which through the bot {self.bot_accepted}), "
            f"failed {self.failed}, requests retried {self.retried}",
            f"SIGKILLs {dict(self.kills)}, broker outages {self.broker_restarts}, "
            f"{self.seconds:.1f} s",
        ]
        out += [f"  {k}: {v}" for k, v in self.checks.items()]
        out += [f"  not accepted: {f}" for f in self.failures]
        return out


class Cluster:
    """The three services as real processes on fixed ports, and a restartable broker."""

    def __init__(self, database_url: str, broker: EmbeddedBroker,
                 bot_api_url: str | None = None) -> None:
        self.database_url = database_url
        self.broker = broker
        env = {"AWASI_RATE_LIMIT_PER_MINUTE": "1000000"}
        self.procs = {name: ServiceProcess(name, database_url, broker.bootstrap,
                                           extra_env=dict(env)) for name in SERVICES}
        if bot_api_url:
            self.procs["intake"].extra_env.update({  # type: ignore[union-attr]
                "AWASI_TELEGRAM_TOKEN": BOT_TOKEN, "AWASI_TELEGRAM_API_URL": bot_api_url,
                "AWASI_TELEGRAM_WEBHOOK_SECRET": BOT_SECRET,
                "AWASI_TELEGRAM_MODE": "webhook"})

    @property
    def intake_url(self) -> str:
        return self.procs["intake"].url

    async def start(self) -> None:
        for p in self.procs.values():
            p.start()
        for p in self.procs.values():
            await p.wait_healthy(60)

    def stop(self) -> None:
        for p in self.procs.values():
            p.kill()

    async def ensure_up(self) -> None:
        if not self.broker.running:
            self.broker.start()
        for p in self.procs.values():
            if p.process is None or p.process.poll() is not None:
                p.start()
        for p in self.procs.values():
            await p.wait_healthy(60)

    def kill_and_restart_later(self, name: str, down_s: float) -> asyncio.Task[None]:
        proc = self.procs[name]
        proc.kill()

        async def restart() -> None:
            await asyncio.sleep(down_s)
            proc.start()

        return asyncio.ensure_future(restart())

    async def broker_outage(self, down_s: float) -> None:
        """Stop the broker (SIGSTOP) for ``down_s`` and continue it: clients see an
        unreachable broker, as with an Apache Kafka outage; its data survives."""
        self.broker.pause()
        try:
            await asyncio.sleep(down_s)
        finally:
            self.broker.resume()


async def submit_one(session: aiohttp.ClientSession, url: str, i: int,
                     rng: random.Random, report: ChaosReport) -> Outcome:
    region, category, text = SAMPLES[i % len(SAMPLES)]
    privacy = ("named", "confidential", "anonymous")[i % 3]
    body: dict[str, Any] = {
        "region": region, "category": category, "privacy": privacy,
        "description": f"{text} (laporan uji #{i})",
    }
    if privacy != "anonymous":
        body["reporter"] = {"name": f"Warga Uji {i}", "phone": "+62 811 0000 0000"}
    outcome = Outcome(key=f"chaos-{uuid.uuid4()}")
    # A careful client: the same Idempotency-Key on every retry, so a retry after a
    # lost answer can never file the complaint twice. Its patience is time, not a
    # count of attempts: on a loaded machine intake killed twice in a row can take
    # longer to come back than 40 quick retries last (seen: about 10 s).
    give_up = time.monotonic() + CLIENT_PATIENCE_S
    for attempt in itertools.count():
        if time.monotonic() > give_up:
            break
        outcome.attempts = attempt + 1
        try:
            async with session.post(f"{url}/api/v1/complaints", json=body,
                                    headers={"Idempotency-Key": outcome.key},
                                    timeout=aiohttp.ClientTimeout(total=15)) as r:
                data = await r.json(content_type=None)
                if r.status == 201:
                    outcome.tracking_code = data["tracking_code"]
                    outcome.complaint_id = data["complaint_id"]
                    outcome.error = None
                    return outcome
                outcome.error = f"HTTP {r.status}: {data}"
                if r.status < 500 and r.status != 429:
                    return outcome  # a real refusal: not retried
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            outcome.error = repr(e)
        report.retried += 1
        await asyncio.sleep(0.1 + rng.random() * 0.3)
    return outcome


BOT_TOKEN = "777000:chaos-token-for-the-stand-in"
BOT_SECRET = "chaos-webhook-secret-0123456789"
CODE = re.compile(r"\b[A-Z]{3}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")
_update_ids = itertools.count(1)
_chat_ids = itertools.count(7_000_000)


def _update(chat: int, *, text: str | None = None, data: str | None = None) -> dict[str, Any]:
    user = {"id": chat, "is_bot": False, "first_name": "Warga", "language_code": "id"}
    private = {"id": chat, "type": "private", "first_name": "Warga"}
    if data is not None:
        return {"update_id": next(_update_ids), "callback_query": {
            "id": f"cq{next(_update_ids)}", "from": user, "chat_instance": "ci", "data": data,
            "message": {"message_id": 1, "date": int(time.time()), "chat": private,
                        "text": "..."}}}
    assert text is not None
    message: dict[str, Any] = {"message_id": next(_update_ids), "date": int(time.time()),
                               "chat": private, "from": user, "text": text}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0,
                                "length": len(text.split()[0])}]
    return {"update_id": next(_update_ids), "message": message}


async def bot_report(session: aiohttp.ClientSession, url: str, api: Any, i: int,
                     report: ChaosReport) -> Outcome:
    """Report one complaint through the bot's webhook, as a citizen would: a fresh chat
    per attempt; a step whose answer does not come (intake was killed) means starting
    over in a new chat. Returns the tracking code the bot gave, if any."""
    region, category, text = SAMPLES[i % len(SAMPLES)]
    steps: list[tuple[dict[str, str], Any]] = [
        ({"text": "/lapor"}, lambda c: f"r:{region}" in [d for _, d in c.buttons]),
        ({"data": f"r:{region}"}, lambda c: f"c:{category}" in [d for _, d in c.buttons]),
        ({"data": f"c:{category}"}, lambda c: True),
        ({"text": f"{text} (laporan bot #{i})"},
         lambda c: "skip" in [d for _, d in c.buttons]),
        ({"data": "skip"}, lambda c: "done" in [d for _, d in c.buttons]),
        ({"data": "done"}, lambda c: "pv:anonymous" in [d for _, d in c.buttons]),
        ({"data": "pv:anonymous"}, lambda c: "ok" in [d for _, d in c.buttons]),
        ({"data": "ok"}, lambda c: CODE.search(c.text) is not None),
    ]
    outcome = Outcome(key=f"bot-{i}")
    for attempt in range(30):
        outcome.attempts = attempt + 1
        chat = next(_chat_ids)
        last = None
        for what, expected in steps:
            update = _update(chat, **what)
            before = len(api.sent(chat))
            if not await _post_update(session, url, update):
                break
            try:
                sent = await api.wait_sent(chat, before + 1, within=6.0)
            except (AssertionError, TimeoutError):
                break  # the answer never came: start over in a new chat
            last = sent[-1]
            if not expected(last):
                break
        else:
            assert last is not None
            match = CODE.search(last.text)
            assert match is not None
            outcome.tracking_code = match.group(0)
            outcome.error = None
            return outcome
        report.retried += 1
        await asyncio.sleep(0.3)
    outcome.error = "the bot never gave a tracking code"
    return outcome


async def _post_update(session: aiohttp.ClientSession, url: str, update: dict[str, Any]) -> bool:
    """POST to the webhook until intake takes it (it may be down or starting)."""
    for _ in range(100):
        try:
            async with session.post(f"{url}/telegram/webhook", json=update,
                                    headers={"X-Telegram-Bot-Api-Secret-Token": BOT_SECRET},
                                    timeout=aiohttp.ClientTimeout(total=10)) as r:
                if r.status == 200:
                    return True
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.2)
    return False


async def run_chaos(database_url: str, broker: EmbeddedBroker, *, complaints: int,
                    concurrency: int = 24, kill_every_s: tuple[float, float] = (1.0, 3.0),
                    broker_every: int = 4, seed: int = 7, bot_complaints: int = 0,
                    converge_timeout_s: float = 180.0) -> ChaosReport:
    """Drive ``complaints`` through intake under chaos, then converge and check.

    Raises ``AssertionError`` naming the first broken invariant."""
    async with contextlib.AsyncExitStack() as stack:
        api = None
        if bot_complaints:
            from tests.support.botapi import running_botapi

            api = await stack.enter_async_context(running_botapi(BOT_TOKEN))
        report = await _run_chaos(database_url, broker, api, complaints=complaints,
                                  concurrency=concurrency, kill_every_s=kill_every_s,
                                  broker_every=broker_every, seed=seed,
                                  bot_complaints=bot_complaints,
                                  converge_timeout_s=converge_timeout_s)
        if api is not None:
            api.assert_clean()  # the bot called no Bot API method the stand-in does not know
        return report


async def _run_chaos(database_url: str, broker: EmbeddedBroker, api: Any, *, complaints: int,
                     concurrency: int, kill_every_s: tuple[float, float], broker_every: int,
                     seed: int, bot_complaints: int, converge_timeout_s: float) -> ChaosReport:
    rng = random.Random(seed)
    report = ChaosReport()
    cluster = Cluster(database_url, broker, api.url if api is not None else None)
    pool = await create_pool(database_url, min_size=1, max_size=4)
    started = time.monotonic()
    try:
        await cluster.start()
        outcomes: list[Outcome] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(complaints):
            queue.put_nowait(i)

        async with aiohttp.ClientSession() as session:
            async def worker() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    outcomes.append(await submit_one(session, cluster.intake_url, i, rng,
                                                     report))

            bot_queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(bot_complaints):
                bot_queue.put_nowait(i)

            async def bot_worker() -> None:
                while not bot_queue.empty():
                    i = bot_queue.get_nowait()
                    outcome = await bot_report(session, cluster.intake_url, api, i, report)
                    outcomes.append(outcome)
                    report.bot_accepted += bool(outcome.tracking_code)

            workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
            workers += [asyncio.ensure_future(bot_worker()) for _ in range(4 if api else 0)]
            restarts: list[asyncio.Task[None]] = []
            round_no = 0
            while not all(w.done() for w in workers):
                await asyncio.sleep(rng.uniform(*kill_every_s))
                if all(w.done() for w in workers):
                    break
                round_no += 1
                if broker_every and round_no % broker_every == 0:
                    await cluster.broker_outage(down_s=rng.uniform(1.0, 4.0))
                    report.broker_restarts += 1
                else:
                    name = rng.choice(SERVICES)
                    restarts.append(cluster.kill_and_restart_later(name, rng.uniform(0.2, 1.5)))
                    report.kills[name] += 1
            await asyncio.gather(*workers)
            await asyncio.gather(*restarts)

        await cluster.ensure_up()
        report.submitted = len(outcomes)
        accepted = [o for o in outcomes if o.tracking_code]
        report.accepted = len(accepted)
        report.failed = len(outcomes) - len(accepted)
        report.failures = [f"{o.key}: {o.error} after {o.attempts} attempts"
                           for o in outcomes if not o.tracking_code][:10]
        await converge(pool, report, accepted, converge_timeout_s, broker.bootstrap)
        async with aiohttp.ClientSession() as session, session.get(
            f"{cluster.procs['oversight'].url}/api/v1/audit/verify"
        ) as r:
            verify = await r.json()
        report.checks["audit chain"] = verify
        assert verify.get("ok") is True, f"audit chain broken: {verify}"
    finally:
        report.seconds = time.monotonic() - started
        cluster.stop()
        await pool.close()
    return report


async def converge(pool: asyncpg.Pool, report: ChaosReport, accepted: list[Outcome],
                   timeout_s: float, bootstrap: str) -> None:
    """Wait until every store agrees, then check the invariants (AssertionError naming
    the first that broke): every accepted complaint stored once, routed to the agency
    its rule names, one routing decision per complaint on the router topic, every
    event of the topics on the oversight timeline once and in its topic's order."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = await _counts(pool)
        done = (state["intake complaints"] == state["router tickets"]
                == state["oversight cases with submitted"] == state["oversight cases routed"]
                == state["intake complaints with status from router"]
                and state["unsent outbox rows"] == 0)
        if done or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    report.checks.update(state)

    codes = [o.tracking_code for o in accepted]
    assert len(set(codes)) == len(codes), "one tracking code handed out twice"
    rows = await pool.fetch("SELECT id::text, tracking_code FROM intake.complaints")
    stored = {r["tracking_code"]: r["id"] for r in rows}
    missing = [c for c in codes if c not in stored]
    assert not missing, f"{len(missing)} accepted complaints are not in intake: {missing[:5]}"
    wrong_id = [o for o in accepted
                if o.complaint_id and stored[o.tracking_code] != o.complaint_id]
    assert not wrong_id, "a receipt names another complaint"
    keys = await pool.fetchval("SELECT count(*) FROM intake.idempotency_keys")
    assert len(stored) == keys, (
        f"{len(stored)} complaints for {keys} idempotency keys: a retry filed twice")

    await check_routing(pool, report, set(stored.values()))
    await check_topics_and_timelines(pool, report, bootstrap, set(stored.values()))
    assert state["unsent outbox rows"] == 0, "the outbox did not drain"
    assert state["intake complaints with status from router"] == len(stored), (
        "the router's answer did not reach every complaint's status")


async def check_routing(pool: asyncpg.Pool, report: ChaosReport, complaints: set[str]) -> None:
    """Every complaint has a ticket at the agency the catalog's rule names (or in its
    region's triage queue), and intake shows the citizen that agency."""
    catalog = load_catalog(Settings().catalog)  # the services run the demo catalog
    rows = await pool.fetch(
        "SELECT c.id::text AS cid, c.region, c.category, c.title, c.description,"
        " c.agency AS intake_agency, t.agency, t.rule, t.status"
        " FROM intake.complaints c LEFT JOIN router.tickets t ON t.complaint_id = c.id::text")
    wrong = []
    for r in rows:
        if r["cid"] not in complaints:
            continue
        if r["status"] is None:
            wrong.append((r["cid"], "no ticket"))
            continue
        # The text the router routes on (services/router/routing.py, plan).
        text = f"{r['title'] or ''}\n{r['description']}"
        decision = catalog.route(r["region"], r["category"], text)
        got = (r["agency"], r["rule"], r["intake_agency"])
        if got != (decision.agency, decision.rule, decision.agency) or (
                decision.agency is None) != (r["status"] == "triage"):
            wrong.append((r["cid"], f"expected {decision}, ticket and intake say {got}"))
    report.checks["complaints routed by their rule"] = len(complaints) - len(wrong)
    assert not wrong, f"{len(wrong)} complaints not at their rule's agency: {wrong[:3]}"


ROUTING = ("complaint.routed", "complaint.needs_triage")


async def check_topics_and_timelines(pool: asyncpg.Pool, report: ChaosReport, bootstrap: str,
                                     complaints: set[str]) -> None:
    """Read the three topics as an outside observer: one routing decision per complaint
    (a relay's repeat of the same event is counted apart, as a redelivery, since the
    consumers' dedupe absorbs it), and every event on the oversight timeline exactly
    once, in the order its topic holds it (one complaint's events share a partition)."""
    on_topic: dict[str, list[dict[str, Any]]] = {}
    for topic in topics.ALL:
        on_topic[topic] = [m for m in await read_all(bootstrap, topic, settle=1.0)
                           if isinstance(m, dict) and m.get("complaint_id") in complaints]

    # One routing decision per complaint on the router topic.
    decisions: dict[str, set[str]] = {}
    records = 0
    for m in on_topic[topics.ROUTER]:
        if m["type"] in ROUTING:
            records += 1
            decisions.setdefault(m["complaint_id"], set()).add(m["event_id"])
    distinct = sum(len(ids) for ids in decisions.values())
    report.checks["routing decisions on the router topic"] = distinct
    report.checks["  of which republished by a relay (same event id)"] = records - distinct
    unrouted = complaints - set(decisions)
    assert not unrouted, f"{len(unrouted)} complaints with no routing decision on the topic"
    twice = {cid: len(ids) for cid, ids in decisions.items() if len(ids) != 1}
    assert not twice, f"complaints routed more than once: {list(twice.items())[:3]}"

    # Every event on the oversight timeline once, in its topic's order per complaint.
    # The chain is partitioned (services/oversight/chain.py): each partition's
    # positions are gap-free, and a complaint's entries are all in one partition, so
    # its order is its entries' positions there.
    rows = await pool.fetch("SELECT part, part_seq, complaint_id, event_id::text AS event_id"
                            " FROM oversight.timeline ORDER BY part, part_seq")
    assert all(r["part"] is not None for r in rows), "an entry outside the partitions"
    positions: dict[int, list[int]] = {}
    for r in rows:
        positions.setdefault(r["part"], []).append(r["part_seq"])
    for part, seqs in positions.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"chain partition {part} has a gap"
    parts = {}
    for r in rows:
        assert parts.setdefault(r["complaint_id"], r["part"]) == r["part"], (
            f"complaint {r['complaint_id']} in two chain partitions")
    seq_of = {r["event_id"]: r["part_seq"] for r in rows}
    missing, disorder = [], []
    for topic, messages in on_topic.items():
        last: dict[str, int] = {}  # complaint -> timeline seq of its latest event
        seen: set[str] = set()
        for m in sorted(messages, key=lambda m: (m["_partition"], m["_offset"])):
            if m["event_id"] in seen:
                continue  # a relay's repeat: the timeline holds the first delivery
            seen.add(m["event_id"])
            seq = seq_of.get(m["event_id"])
            if seq is None:
                missing.append((topic, m["type"], m["complaint_id"]))
                continue
            if seq < last.get(m["complaint_id"], 0):
                disorder.append((topic, m["complaint_id"], m["type"]))
            last[m["complaint_id"]] = max(seq, last.get(m["complaint_id"], 0))
    assert not missing, f"{len(missing)} events never reached the timeline: {missing[:3]}"
    assert not disorder, f"timeline out of its topic's order: {disorder[:3]}"
    report.checks["timelines complete and in order"] = len(complaints)


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    q = {
        "intake complaints": "SELECT count(*) FROM intake.complaints",
        "intake complaints with status from router":
            "SELECT count(*) FROM intake.complaints WHERE status <> 'submitted'",
        "router tickets": "SELECT count(*) FROM router.tickets",
        "oversight cases with submitted":
            "SELECT count(DISTINCT complaint_id) FROM oversight.timeline"
            " WHERE event_type = 'complaint.submitted'",
        "oversight cases routed":
            "SELECT count(DISTINCT complaint_id) FROM oversight.timeline"
            " WHERE event_type IN ('complaint.routed', 'complaint.needs_triage')",
        "oversight timeline entries": "SELECT count(*) FROM oversight.timeline",
        "unsent outbox rows":
            "SELECT (SELECT count(*) FROM intake.outbox WHERE sent_at IS NULL)"
            " + (SELECT count(*) FROM router.outbox WHERE sent_at IS NULL)"
            " + (SELECT count(*) FROM oversight.outbox WHERE sent_at IS NULL)",
    }
    out = {}
    for name, sql in q.items():
        with contextlib.suppress(asyncpg.PostgresError):
            out[name] = int(await pool.fetchval(sql))
    return out
